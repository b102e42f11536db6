#!/usr/bin/env bash
# istat.sh URL PID [DURATION]: granular candidates at c=16 with perf stat on PID; prints per-request figures
G='resources1=VCPU:1,MEMORY_MB:512&required1=HW_CPU_X86_AVX2&resources2=DISK_GB:1&group_policy=none&limit=50'
D=${3:-8}
export CANDIDATES_QUERY=${Q:-$G} BENCH_DATA=${BENCH_DATA:-/tmp/cprof/seed} PLACEMENT_TOKEN=admin PLACEMENT_MICROVERSION=1.39 BENCH_SCENARIO=candidates BENCH_CONNS=16
wrk -t2 -c16 -d2s -s /work/shared/bench/lua/candidates.lua "$1" >/dev/null 2>&1
perf stat -x, -e instructions:u,instructions:k,task-clock -p "$2" -o /tmp/cprof/pstat.txt &
pp=$!
sleep 0.2
out=$(wrk -t2 -c16 -d${D}s -s /work/shared/bench/lua/candidates.lua "$1" 2>&1 | grep '^BENCH ')
kill -INT $pp; wait $pp
req=$(grep -o 'requests=[0-9]*' <<<"$out" | cut -d= -f2)
python3 - "$req" "$out" <<'PY'
import sys
req=int(sys.argv[1]); v={}
for l in open('/tmp/cprof/pstat.txt'):
    p=l.strip().split(',')
    if len(p)>3 and p[0] and p[0][0].isdigit(): v[p[2]]=float(p[0])
import re
rps=re.search(r'rps=(\S+)',sys.argv[2]).group(1); p99=re.search(r'p99_ms=(\S+)',sys.argv[2]).group(1)
print(f"rps={rps} p99={p99} req={req} Minstr_u/req={v.get('instructions:u',0)/req/1e6:.3f} Minstr_k/req={v.get('instructions:k',0)/req/1e6:.3f} cpu_ms/req={v.get('task-clock',0)/req:.3f}")
PY
