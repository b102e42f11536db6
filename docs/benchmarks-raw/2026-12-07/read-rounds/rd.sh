#!/usr/bin/env bash
# rd.sh REPS BIN... : 3 nodes; GET /resource_classes/VCPU at c=16 on the leader and a follower
reps=$1; shift
for ((r=1;r<=reps;r++)); do for b in "$@"; do
  /tmp/cprof/c3.sh stop; /tmp/cprof/c3.sh start $b; sleep 1
  for t in $(seq 30); do L=$(/tmp/cprof/c3.sh leader | head -1); [[ -n $L ]] && break; sleep 0.5; done; F=$(( L % 3 + 1 ))
  for who in L F; do n=${!who}
    P=$(pgrep -f "listen 127.0.0.1:188${n}0" | head -1)
    t0=$(awk '{print $14+$15}' /proc/$P/stat)
    out=$(wrk -t2 -c16 -d6s -H 'X-Auth-Token: admin' -H 'OpenStack-API-Version: placement 1.39' http://127.0.0.1:188${n}0/resource_classes/VCPU | grep -E "Requests/sec|requests in")
    t1=$(awk '{print $14+$15}' /proc/$P/stat)
    req=$(echo "$out" | grep -o '^ *[0-9]* requests' | grep -o '[0-9]*')
    echo "$(basename $b) r$r $who rps=$(echo "$out" | grep -o 'Requests/sec: *[0-9.]*' | grep -o '[0-9.]*$') cpu_ms/req=$(echo "scale=3; ($t1-$t0)*10/$req" | bc)"
  done
done; done
/tmp/cprof/c3.sh stop
