#!/usr/bin/env bash
# usage: ab.sh OUT BIN_A BIN_B [PAIRS]  -- alternating pairs of 3-node runs, wrk put_alloc at
# c=64 for DUR (15) s, at a follower (every write forwarded) and at the leader; prints one
# line per run: binary, target, writes/s, p99, server CPU (all nodes) per write.
set -uo pipefail
cd /work/main
source scripts/lib.sh
out=$1; a=$2; b=$3; pairs=${4:-3}
kit=/work/shared/bench
mkdir -p "$out" /tmp/prof
one() { # BIN TARGET TAG
  local bin=$1 target=$2 tag=$3 d
  d=$(mktemp -d /tmp/prof/data.XXXX); mkdir -p "$out/logs-$tag"
  cluster_start "$bin" "$d" 3 "$out/logs-$tag" 60 --auth-strategy noauth2 >/dev/null 2>&1
  sleep 2
  local lp tp; lp=$(cluster_leader_port); tp=$lp
  if [[ $target == follower ]]; then
    for p in "${CLUSTER_API_PORTS[@]}"; do [[ $p == "$lp" ]] || { tp=$p; break; }; done
  fi
  python3 $kit/seed.py "http://127.0.0.1:$tp" --providers 1000 --data-dir "$d/seed" >/dev/null 2>&1
  local c0 c1
  c0=$(python3 $kit/cpu_of.py ${CLUSTER_PIDS[*]})
  BENCH_DATA=$d/seed BENCH_SCENARIO=put_alloc BENCH_CONNS=64 wrk -t2 -c64 -d${DUR:-15}s --timeout 30s \
    -s $kit/lua/put_alloc.lua "http://127.0.0.1:$tp" > "$out/wrk-$tag.txt"
  c1=$(python3 $kit/cpu_of.py ${CLUSTER_PIDS[*]})
  stop_pids 5 "${CLUSTER_PIDS[@]}" >/dev/null 2>&1
  rm -rf "$d"
  local line req rps p99
  line=$(grep BENCH "$out/wrk-$tag.txt")
  req=$(sed -E 's/.* requests=([0-9]+).*/\1/' <<<"$line")
  rps=$(sed -E 's/.* rps=([0-9.]+).*/\1/' <<<"$line")
  p99=$(sed -E 's/.* p99_ms=([0-9.]+).*/\1/' <<<"$line")
  printf '%s %-8s %-8s rps=%s p99_ms=%s cpu_ms_per_write=%.3f non2xx=%s\n' "$(date +%H:%M:%S)" "$tag" "$target" "$rps" "$p99" \
    "$(bc -l <<<"($c1 - $c0) * 1000 / $req")" "$(sed -E 's/.* non2xx=([0-9]+).*/\1/' <<<"$line")"
}
for i in $(seq 1 "$pairs"); do
  for target in follower leader; do
    if (( i % 2 )); then one "$a" $target "A$i-$target"; one "$b" $target "B$i-$target"
    else one "$b" $target "B$i-$target"; one "$a" $target "A$i-$target"; fi
  done
done
