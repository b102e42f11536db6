#!/usr/bin/env bash
# ab3.sh REPS BIN... : 3 nodes; per rep and binary: leader istat twice, follower istat twice
reps=$1; shift
for ((r=1;r<=reps;r++)); do for b in "$@"; do
  /tmp/cprof/c3.sh stop; /tmp/cprof/c3.sh start $b; sleep 1
  for t in $(seq 30); do L=$(/tmp/cprof/c3.sh leader); [[ -n $L ]] && break; sleep 0.5; done; F=$(( L % 3 + 1 ))
  PL=$(pgrep -f "listen 127.0.0.1:188${L}0"); PF=$(pgrep -f "listen 127.0.0.1:188${F}0")
  for i in 1 2; do echo "$(basename $b) r$r leader:   $(/tmp/cprof/istat.sh http://127.0.0.1:188${L}0 $PL 6)"; done
  for i in 1 2; do echo "$(basename $b) r$r follower: $(/tmp/cprof/istat.sh http://127.0.0.1:188${F}0 "$PF" 6)"; done
done; done
/tmp/cprof/c3.sh stop
