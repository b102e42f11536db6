#!/usr/bin/env bash
# usage: run.sh BIN OUTDIR   -- 3 nodes, seed 1000, wrk put_alloc c=64 at the leader, perf on each node
set -euo pipefail
cd /work/main
source scripts/lib.sh
bin=$1; out=$2; mkdir -p "$out/logs"
kit=/work/shared/bench
d=$(mktemp -d /tmp/prof/data.XXXX)
cluster_start "$bin" "$d" 3 "$out/logs" 60 --auth-strategy noauth2
trap 'stop_pids 5 "${CLUSTER_PIDS[@]}"; rm -rf "$d"' EXIT
sleep 2
lp=$(cluster_leader_port)
tp=$lp
if [[ ${TARGET:-leader} == follower ]]; then
  for p in "${CLUSTER_API_PORTS[@]}"; do [[ $p == "$lp" ]] || { tp=$p; break; }; done
fi
base=http://127.0.0.1:$tp
python3 $kit/seed.py "$base" --providers 1000 --data-dir "$d/seed" | tail -2
cpu0=$(python3 $kit/cpu_of.py ${CLUSTER_PIDS[*]})
BENCH_DATA=$d/seed BENCH_SCENARIO=put_alloc BENCH_CONNS=64 wrk -t2 -c64 -d${DUR:-20}s --timeout 30s -s $kit/lua/put_alloc.lua "$base" > "$out/wrk.txt" &
w=$!
perfs=()
if [[ -n ${PERF:-} ]]; then
  sleep 5
  for i in 0 1 2; do
    perf record -F 499 ${PERF_G:---call-graph dwarf,16384} -o "$out/perf-$i.data" -p ${CLUSTER_PIDS[i]} -- sleep 8 >/dev/null 2>&1 &
    perfs+=($!)
  done
fi
wait $w
cpu1=$(python3 $kit/cpu_of.py ${CLUSTER_PIDS[*]})
for p in "${perfs[@]}"; do wait $p; done
k=0; for p in "${CLUSTER_API_PORTS[@]}"; do
  echo "-- node $p"
  k=$((k+1)); curl -s http://127.0.0.1:1910$k/metrics | grep -E "^placementd_(storage_log_append_entries|storage_apply_entries|storage_log_fsync_duration_seconds|raft_forward_batch|storage_snapshot_build_duration_seconds)_(sum|count)"
done > "$out/metrics.txt"
grep -E "Requests/sec|BENCH" "$out/wrk.txt" | head -3
echo "target $tp leader port $lp ports ${CLUSTER_API_PORTS[*]} pids ${CLUSTER_PIDS[*]} cpu $cpu0 -> $cpu1"
