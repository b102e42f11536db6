#!/usr/bin/env bash
# restart-ab.sh CORPUS REPS BIN... : time open (WAL replay) and state load on a copy of CORPUS
set -uo pipefail
corpus=$1 reps=$2; shift 2
for ((r = 1; r <= reps; r++)); do
  for bin in "$@"; do
    d=/root/restart-copy; rm -rf $d; cp -a "$corpus" $d; sync
    log=/tmp/restart-ab.log; : >$log
    t0=$(date +%s.%N)
    "$bin" --listen 127.0.0.1:47001 --peer-listen 127.0.0.1:47002 --data-dir $d --node-id 2 \
      --initial-cluster "1=127.0.0.1:47011@127.0.0.1:47012,2=127.0.0.1:47001@127.0.0.1:47002,3=127.0.0.1:47021@127.0.0.1:47022" >$log 2>&1 &
    p=$!
    for ((i = 0; i < 300; i++)); do grep -q "state machine loaded" $log && break; sleep 0.05; done
    t1=$(date +%s.%N)
    kill -9 $p; wait $p 2>/dev/null
    ts() { grep "$1" $log | head -1 | cut -d' ' -f1 | python3 -c 'import sys,datetime;print(datetime.datetime.fromisoformat(sys.stdin.read().strip().replace("Z","+00:00")).timestamp())'; }
    o=$(ts "storage opened"); l=$(ts "state machine loaded")
    python3 -c "print('rep $r $(basename $(dirname $bin))/$(basename $bin): open %.2f s, load %.2f s, total %.2f s' % ($o-$t0, $l-$o, $t1-$t0))"
  done
done
