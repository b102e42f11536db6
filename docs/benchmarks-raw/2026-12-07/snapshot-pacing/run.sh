#!/usr/bin/env bash
# usage: run.sh BIN OUT -- 1 node, seed 1000 providers, fill FILL_S s of put_alloc c=64 (new
# consumers), then REPS x: put_alloc c=16 for 20 s + a probe writing every 10 ms, and at t=5 s
# a snapshot build (placementd cluster snapshot). Prints wrk p99/max, probe max, build time.
set -euo pipefail
cd /work/main
source scripts/lib.sh
bin=$1; out=$2; mkdir -p "$out/logs"
kit=/work/shared/bench
d=$(mktemp -d /tmp/snapstall.XXXX)
cluster_start "$bin" "$d" 1 "$out/logs" 60 --snapshot-every 100000000
trap 'stop_pids 5 "${CLUSTER_PIDS[@]}"; rm -rf "$d"' EXIT
base=http://127.0.0.1:${CLUSTER_API_PORTS[0]}
peer=127.0.0.1:${CLUSTER_PEER_PORTS[0]}
python3 $kit/seed.py "$base" --providers 1000 --consumers 0 --data-dir "$d/seed" | tail -1
BENCH_DATA=$d/seed BENCH_SCENARIO=put_alloc BENCH_CONNS=64 wrk -t2 -c64 -d${FILL_S:-60}s --timeout 30s -s $kit/lua/put_alloc.lua "$base" | grep BENCH | sed 's/^/fill: /'
cluster_snapshot "$bin" 300   # a clean start: the measured builds are alike
sleep 2
for r in $(seq 1 "${REPS:-2}"); do
  python3 docs/benchmarks-raw/2026-12-07/stall-probe/probe.py "$base" 20 > "$out/probe-$r.txt" &
  pp=$!
  BENCH_DATA=$d/seed BENCH_SCENARIO=put_alloc BENCH_CONNS=16 wrk -t2 -c16 -d20s --timeout 30s -s $kit/lua/put_alloc.lua "$base" > "$out/wrk-$r.txt" &
  wp=$!
  sleep 5
  t0=$(date +%s.%N)
  cluster_snapshot "$bin" 300
  t1=$(date +%s.%N)
  wait $wp; wait $pp
  size=$(du -sm "$d"/node1/snap* 2>/dev/null | awk '{s+=$1} END{print s}')
  line=$(grep BENCH "$out/wrk-$r.txt")
  echo "rep=$r build_s=$(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b-a}') snapdir_mb=$size" \
    "rps=$(sed 's/.* rps=\([^ ]*\).*/\1/' <<<"$line") p99_ms=$(sed 's/.* p99_ms=\([^ ]*\).*/\1/' <<<"$line") max_ms=$(sed 's/.* max_ms=\([^ ]*\).*/\1/' <<<"$line")" \
    "$(awk '{n++; if ($2>m) m=$2; if ($2>50) s++; if ($2>20) t++} END{printf "probe: n=%d max_ms=%.1f over20=%d over50=%d", n, m, t, s}' "$out/probe-$r.txt")"
  sleep 2
done
