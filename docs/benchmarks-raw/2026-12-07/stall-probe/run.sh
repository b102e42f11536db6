#!/usr/bin/env bash
# Diagnostic: one node, heavy candidates load + writes, snapshots every 25k entries; a probe
# write every 10 ms records its latency; a sampler records every thread's state and wchan.
set -euo pipefail
cd /work/main
source scripts/lib.sh
kit=/work/shared/bench
bin=${BIN:-/tmp/placementd-idle}
OUT=${OUT:-/tmp/stall/out}
rm -rf "$OUT"; mkdir -p "$OUT/logs"
export PLACEMENT_TOKEN=admin PLACEMENT_MICROVERSION=1.39 BENCH_DATA=$OUT/seed
data=$(mktemp -d /tmp/placementd-stall.XXXXXX)
CLUSTER_PIDS=()
trap 'kill $(jobs -p) 2>/dev/null; stop_pids 10 "${CLUSTER_PIDS[@]}"; cp $data/node1/*/LOG* $OUT/ 2>/dev/null; find $data -name "LOG" -exec cp {} $OUT/rocksdb-LOG \; ; rm -rf -- "$data"' EXIT
cluster_start "$bin" "$data" 1 "$OUT/logs" 60 --snapshot-every ${SNAP:-25000}
base=http://127.0.0.1:${CLUSTER_API_PORTS[0]}
pid=${CLUSTER_PIDS[0]}
python3 "$kit/seed.py" "$base" --providers 1000 --consumers 0 --data-dir "$BENCH_DATA" | tail -1
PLACEMENT_KIT=$kit python3 - "$base" 30 <<'PY'
import os, sys, uuid
sys.path.insert(0, os.environ["PLACEMENT_KIT"])
from placement_client import Placement
pl = Placement(sys.argv[1]); n = int(sys.argv[2]); root = str(uuid.uuid4())
pl.must("POST", "/resource_providers", {"name": "wide", "uuid": root}, ok=(200, 201))
for k in range(n):
    rp = str(uuid.uuid4())
    js = pl.must("POST", "/resource_providers", {"name": "wide-c%02d" % k, "uuid": rp, "parent_provider_uuid": root}, ok=(200, 201))
    pl.must("PUT", "/resource_providers/%s/inventories" % rp, {"resource_provider_generation": js["generation"],
        "inventories": {"VCPU": {"total": 1000, "allocation_ratio": 1.0, "reserved": 0, "min_unit": 1, "max_unit": 1000, "step_size": 1}}})
PY
heavy_q="resources1=VCPU:1&resources2=VCPU:1&resources3=VCPU:1&group_policy=none"
python3 /tmp/stall/sampler.py $pid $((${SECS:-40}+6)) > $OUT/threads.txt & p1=$!
python3 /tmp/stall/probe.py $base $((${SECS:-40}+4)) > $OUT/probe.txt & p2=$!
sleep 1
[[ ${HEAVY:-1} == 1 ]] && CANDIDATES_QUERY=$heavy_q BENCH_SCENARIO=heavy BENCH_CONNS=2 wrk -t2 -c2 -d$((${SECS:-40}+2))s --timeout 120s -s $kit/lua/candidates.lua $base > $OUT/heavy.txt 2>&1 & p3=$!
sleep 1
BENCH_SCENARIO=put_alloc BENCH_CONNS=16 wrk -t2 -c16 -d${SECS:-40}s --timeout 120s -s $kit/lua/put_alloc.lua $base 2>&1 | grep BENCH > $OUT/writes.txt
wait $p1 $p2 ${p3:-}
