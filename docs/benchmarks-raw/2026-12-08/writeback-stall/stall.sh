#!/usr/bin/env bash
# usage: stall.sh BIN OUT [DUR]: 3 nodes, seed 1000, wrk put_alloc c=16 at the leader; keeps data
set -uo pipefail
cd /work/main; source scripts/lib.sh
bin=$1; out=$2; mkdir -p $out/logs; kit=/work/shared/bench
d=$out/data; mkdir -p $d
cluster_start "$bin" "$d" 3 "$out/logs" 60 --auth-strategy noauth2 >/dev/null 2>&1
sleep 2; lp=$(cluster_leader_port)
python3 $kit/seed.py "http://127.0.0.1:$lp" --providers 1000 --data-dir "$d/seed" >/dev/null 2>&1
date -u +%T.%N > $out/start
BENCH_DATA=$d/seed BENCH_SCENARIO=put_alloc BENCH_CONNS=16 wrk -t2 -c16 -d${3:-60}s --timeout 30s -s $kit/lua/put_alloc.lua "http://127.0.0.1:$lp" > $out/wrk.txt
stop_pids 5 "${CLUSTER_PIDS[@]}" >/dev/null 2>&1
grep BENCH $out/wrk.txt
