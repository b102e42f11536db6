#!/bin/bash
# perfload.sh BIN OUT: perf record one restart of a fresh copy of crash-corpus2 until loaded
bin=$1 out=$2
d=/root/restart-copy; rm -rf $d; cp -a /root/crash-corpus2 $d; sync; log=/tmp/perfload.log
perf record -F 999 $PERFARGS -o $out -- $bin --listen 127.0.0.1:47001 --peer-listen 127.0.0.1:47002 --data-dir $d --node-id 2 --initial-cluster "1=127.0.0.1:47011@127.0.0.1:47012,2=127.0.0.1:47001@127.0.0.1:47002,3=127.0.0.1:47021@127.0.0.1:47022" >$log 2>&1 &
for i in $(seq 300); do grep -q "state machine loaded" $log && break; sleep 0.05; done
kill -INT $(pgrep -f "^$bin --listen 127.0.0.1:47001"); wait
grep -E "opened|loaded" $log | cut -c1-110
