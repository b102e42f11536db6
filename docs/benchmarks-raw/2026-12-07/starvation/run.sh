#!/usr/bin/env bash
set -euo pipefail
cd /work/main
source scripts/lib.sh
kit=/work/shared/bench
bin=$1; OUT=$2
rm -rf "$OUT"; mkdir -p "$OUT/logs"
export PLACEMENT_TOKEN=admin PLACEMENT_MICROVERSION=1.39 BENCH_DATA=$OUT/seed
data=$(mktemp -d /tmp/placementd-starve.XXXXXX)
CLUSTER_PIDS=()
trap 'stop_pids 10 "${CLUSTER_PIDS[@]}"; rm -rf -- "$data"' EXIT
cluster_start "$bin" "$data" 1 "$OUT/logs" 60
base=http://127.0.0.1:${CLUSTER_API_PORTS[0]}
python3 "$kit/seed.py" "$base" --providers 1000 --consumers 0 --data-dir "$BENCH_DATA" | tail -1
python3 - "$base" 26 > $OUT/reads.txt <<'PY' &
import sys, time, http.client, urllib.parse
base, secs = sys.argv[1], float(sys.argv[2])
u = urllib.parse.urlparse(base)
h = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}
c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
end = time.time() + secs
while time.time() < end:
    t0 = time.time()
    c.request("GET", "/allocation_candidates?resources=VCPU:1,MEMORY_MB:512,DISK_GB:1&limit=50", headers=h); r = c.getresponse(); r.read()
    print("%.3f %.1f %d" % (t0, (time.time() - t0) * 1000, r.status), flush=True)
    time.sleep(0.05)
PY
rp=$!
sleep 3
BENCH_SCENARIO=put_alloc BENCH_CONNS=64 wrk -t2 -c64 -d20s --timeout 60s -s $kit/lua/put_alloc.lua $base 2>&1 | grep BENCH > $OUT/writes.txt
wait $rp
