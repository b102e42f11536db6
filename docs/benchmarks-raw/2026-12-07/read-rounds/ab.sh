#!/usr/bin/env bash
# ab.sh REPS BIN... : for each rep, each binary: start on the 5k data dir, istat twice, stop
reps=$1; shift
for ((r=1;r<=reps;r++)); do for b in "$@"; do
  pkill -f 'listen 127.0.0.1:18780' ; sleep 1.5
  ($b --listen 127.0.0.1:18780 --peer-listen 127.0.0.1:18781 --data-dir /tmp/cprof/data $EXTRA > /tmp/cprof/node-ab.log 2>&1 &)
  for i in $(seq 50); do curl -sf 127.0.0.1:18780/readyz >/dev/null && break; sleep 0.2; done
  P=$(pgrep -f "$(basename $b) --listen 127.0.0.1:18780")
  for i in 1 2; do echo "$(basename $b) r$r: $(/tmp/cprof/istat.sh http://127.0.0.1:18780 $P 6)"; done
done; done
pkill -f 'listen 127.0.0.1:18780'
