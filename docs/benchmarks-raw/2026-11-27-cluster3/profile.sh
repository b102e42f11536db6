#!/usr/bin/env bash
# Ad-hoc profile of PUT /allocations on a fresh 3-node cluster: kept as the record of how
# the profile in docs/benchmarks.md ("Durable 3-node cluster writes") was taken; not maintained.
#   profile.sh OUTDIR
# Per-process CPU per request (each node, haproxy, wrk) via HAProxy and direct to the
# leader at c=1/16/64; fsync counts/latency on the leader and a follower (strace -c);
# a perf cpu-clock flat profile of the leader and a follower at c=64 via HAProxy.
set -euo pipefail
source /work/main/scripts/lib.sh
kit=/work/shared/bench
out=${1:?outdir}; mkdir -p "$out"
bin=${PLACEMENTD_BIN:?}
DUR=${DUR:-10}
data=$(mktemp -d /tmp/bench-prof-data.XXXXXX)
hapid=
cleanup() { stop_pids 5 "$hapid" "${CLUSTER_PIDS[@]}"; rm -rf -- "$data"; }
trap cleanup EXIT
cluster_start "$bin" "$data" 3 "$out" 60
lport=$(cluster_leader_port)
hport=$(free_ports 1)
cluster_haproxy_config "$hport" >"$data/haproxy.cfg"
haproxy -db -f "$data/haproxy.cfg" >"$out/haproxy.log" 2>&1 &
hapid=$!
wait_http "http://127.0.0.1:$hport/" 30
echo "leader API port $lport; nodes ${CLUSTER_API_PORTS[*]} pids ${CLUSTER_PIDS[*]}" | tee "$out/setup.txt"
python3 "$kit/seed.py" "http://127.0.0.1:$hport" --providers 1000 --data-dir "$out/data" | tail -1
export BENCH_DATA=$out/data PLACEMENT_TOKEN=admin PLACEMENT_MICROVERSION=1.39
cpu() { python3 "$kit/cpu_of.py" "$1"; }
measure() {  # label url conns
  local label=$1 url=$2 c=$3 t=$(( $3 < 2 ? $3 : 2 )) i p
  local -a before=() pids=("${CLUSTER_PIDS[@]}" "$hapid")
  for p in "${pids[@]}"; do before+=("$(cpu "$p")"); done
  local s0; s0=$(awk '{print $14+$15}' /proc/self/stat)
  local wt0; wt0=$(date +%s.%N)
  BENCH_SCENARIO=put_alloc BENCH_CONNS=$c /usr/bin/time -f '%U %S' -o "$out/wrk-time.txt" \
    wrk -t"$t" -c"$c" -d"${DUR}s" --timeout 60s -s "$kit/lua/put_alloc.lua" "$url" >"$out/wrk.txt" 2>&1
  local line n; line=$(grep '^BENCH' "$out/wrk.txt"); n=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
  local rps p50 p99; rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")
  p50=$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$line"); p99=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$line")
  local res="$label c=$c rps=$rps p50=$p50 p99=$p99 cpu_ms_per_req:"
  i=0
  for p in "${pids[@]}"; do
    local name=node$((i + 1)); ((i < 3)) || name=haproxy
    [[ ${CLUSTER_API_PORTS[i]:-} != "$lport" ]] || name+="(L)"
    res+=" $name=$(awk -v a="${before[i]}" -v b="$(cpu "$p")" -v n="$n" 'BEGIN{printf "%.2f", (b-a)*1000/n}')"
    i=$((i + 1))
  done
  res+=" wrk=$(awk -v n="$n" '{printf "%.2f", ($1+$2)*1000/n}' "$out/wrk-time.txt")"
  echo "$res" | tee -a "$out/cpu.txt"
}
for c in 1 16 64; do measure haproxy "http://127.0.0.1:$hport" "$c"; done
for c in 1 16 64; do measure leader "http://127.0.0.1:$lport" "$c"; done
# fsyncs: strace -c on the leader and on one follower, c=64 via haproxy
fpid=
for i in 0 1 2; do
  [[ ${CLUSTER_API_PORTS[i]} == "$lport" ]] && lpid=${CLUSTER_PIDS[i]} || fpid=${fpid:-${CLUSTER_PIDS[i]}}
done
applied() { curl -s "http://127.0.0.1:$lport/readyz" | grep -o '"applied_index":[0-9]*' | cut -d: -f2; }
BENCH_SCENARIO=put_alloc BENCH_CONNS=64 wrk -t2 -c64 -d12s --timeout 60s -s "$kit/lua/put_alloc.lua" "http://127.0.0.1:$hport" >"$out/wrk-strace.txt" 2>&1 &
w=$!
sleep 3
a0=$(applied)
timeout -s INT 5 strace --seccomp-bpf -c -w -f -e trace=fsync,fdatasync -p "$lpid" -o "$out/strace-leader.txt" 2>/dev/null &
s1=$!
timeout -s INT 5 strace --seccomp-bpf -c -w -f -e trace=fsync,fdatasync -p "$fpid" -o "$out/strace-follower.txt" 2>/dev/null &
s2=$!
wait "$s1" "$s2" || true
a1=$(applied)
wait "$w" || true
echo "== strace leader + follower at once, 5 s at c=64 via haproxy: wrk $(grep '^BENCH' "$out/wrk-strace.txt" | grep -o 'rps=[0-9.]*'); entries applied on the leader in the window: $((a1 - a0))" | tee -a "$out/cpu.txt"
for who in leader follower; do echo "-- $who"; cat "$out/strace-$who.txt"; done | tee -a "$out/cpu.txt"
for who in leader follower; do
  p=$lpid; [[ $who == leader ]] || p=$fpid
  BENCH_SCENARIO=put_alloc BENCH_CONNS=64 wrk -t2 -c64 -d8s --timeout 60s -s "$kit/lua/put_alloc.lua" "http://127.0.0.1:$hport" >"$out/wrk-perf-$who.txt" 2>&1 &
  w=$!
  sleep 2
  perf record -F 250 --call-graph dwarf,16384 -o "$out/perf-$who.data" -p "$p" -- sleep 3 >/dev/null 2>&1 || true
  wait "$w" || true
done
exit 0
# perf flat profile, c=64 via haproxy
BENCH_SCENARIO=put_alloc BENCH_CONNS=64 wrk -t2 -c64 -d14s --timeout 60s -s "$kit/lua/put_alloc.lua" "http://127.0.0.1:$hport" >"$out/wrk-perf.txt" 2>&1 &
w=$!
sleep 2
perf record -F 499 -g -o "$out/perf-all.data" -a -- sleep 8 >/dev/null 2>&1 || true
wait "$w" || true
echo "perf: $(grep '^BENCH' "$out/wrk-perf.txt" | grep -o 'rps=[0-9.]*')" | tee -a "$out/cpu.txt"
