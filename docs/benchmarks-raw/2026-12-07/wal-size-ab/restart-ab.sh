#!/usr/bin/env bash
# usage: restart-ab.sh BIN OUT -- 1 node, 1000 providers, put_alloc c=64 for FILL s, then KILLS times:
# the WAL's size, kill -9, restart on the same dir and ports, seconds to /readyz 200; 15 s more writes between kills
set -euo pipefail
cd /work/main; source scripts/lib.sh
bin=$1; out=$2; mkdir -p "$out"; kit=/work/shared/bench
d=$(mktemp -d /tmp/prof/rs.XXXX); trap 'kill -9 $pid 2>/dev/null; rm -rf "$d"' EXIT
cluster_plan 1
args=(--listen 127.0.0.1:${CLUSTER_API_PORTS[0]} --peer-listen 127.0.0.1:${CLUSTER_PEER_PORTS[0]} --data-dir $d/node1 --node-id 1 --initial-cluster "$CLUSTER_INITIAL" --auth-strategy noauth2)
"$bin" "${args[@]}" >>"$out/node1.log" 2>&1 & pid=$!
base=http://127.0.0.1:${CLUSTER_API_PORTS[0]}
wait_http $base/readyz 60 $pid
python3 $kit/seed.py "$base" --providers 1000 --data-dir "$d/seed" >/dev/null
fill=${FILL:-60}
for k in $(seq 1 ${KILLS:-3}); do
  BENCH_DATA=$d/seed BENCH_SCENARIO=put_alloc BENCH_CONNS=64 wrk -t2 -c64 -d${fill}s --timeout 30s -s $kit/lua/put_alloc.lua "$base" | grep BENCH | cut -c1-160
  wal=$(du -cb $d/node1/rocksdb/*.log | tail -1 | cut -f1)
  kill -9 $pid; wait $pid 2>/dev/null || true
  t0=$(date +%s.%N)
  "$bin" "${args[@]}" >>"$out/node1.log" 2>&1 & pid=$!
  wait_http $base/readyz 60 $pid
  t1=$(date +%s.%N)
  echo "kill=$k wal_mb=$((wal >> 20)) ready_s=$(echo "$t1 - $t0" | bc)"
  fill=15
done
grep -E "storage opened|state machine loaded" "$out/node1.log" | tail -$((2 * ${KILLS:-3}))
