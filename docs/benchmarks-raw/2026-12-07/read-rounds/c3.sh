#!/usr/bin/env bash
# c3.sh start BIN | stop  : 3-node cluster on /tmp/cprof/c3, API ports 18810/18820/18830
IC="1=127.0.0.1:18810@127.0.0.1:18811,2=127.0.0.1:18820@127.0.0.1:18821,3=127.0.0.1:18830@127.0.0.1:18831"
case $1 in
start)
  for i in 1 2 3; do
    ($2 --listen 127.0.0.1:188${i}0 --peer-listen 127.0.0.1:188${i}1 --data-dir /tmp/cprof/c3/node$i --node-id $i --initial-cluster $IC $EXTRA >> /tmp/cprof/c3/node$i.log 2>&1 &)
  done
  for i in 1 2 3; do for t in $(seq 100); do curl -sf 127.0.0.1:188${i}0/readyz >/dev/null && break; sleep 0.2; done; done
  ;;
stop) pkill -f 'listen 127.0.0.1:188[123]0'; sleep 2;;
leader) for i in 1 2 3; do curl -s 127.0.0.1:188${i}0/readyz | grep -q '"is_leader":true' && echo $i; done;;
esac
