#!/usr/bin/env bash
# usage: get-root.sh BIN_A BIN_B [PAIRS]  -- one node each (noauth2, access log to a file),
# wrk GET / at c=64 for 8 s, alternating; prints the server's CPU per request.
set -uo pipefail
a=$1; b=$2; pairs=${3:-3}
kit=/work/shared/bench
port=18080
one() { # BIN
  local d pid c0 c1 rps
  d=$(mktemp -d /tmp/get-root.XXXX)
  "$1" --listen 127.0.0.1:$port --data-dir "$d/node" --auth-strategy noauth2 >"$d/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/ >/dev/null && break; sleep 0.1; done
  c0=$(python3 $kit/cpu_of.py $pid)
  rps=$(wrk -t2 -c64 -d8s http://127.0.0.1:$port/ | awk '/Requests\/sec/ {print $2}')
  c1=$(python3 $kit/cpu_of.py $pid)
  kill $pid; wait $pid 2>/dev/null; rm -rf "$d"
  printf '%s rps=%s us_per_request=%.1f\n' "$1" "$rps" "$(bc -l <<<"($c1 - $c0) * 1000000 / ($rps * 8)")"
}
for _ in $(seq "$pairs"); do one "$a"; one "$b"; done
