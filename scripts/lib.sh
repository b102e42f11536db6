# Shared helpers for scripts/*; sourced, never run. Bash only.
#
# - placementd_repo     absolute path of the repository root
# - placementd_target   the cargo target dir every script uses (the shared release dir, so
#                       the bundled RocksDB is built once per machine)
# - placementd_bin      the placementd binary to run, WITHOUT building anything:
#                       $PLACEMENTD_BIN, else $CARGO_TARGET_DIR/release/placementd,
#                       else $HOME/.cache/placementd/target/release/placementd,
#                       else <repo>/target/release/placementd
# - wait_http URL SECS [PID]   poll GET URL until it answers 200 (fails early if PID died);
#                     an https URL is checked against $CLUSTER_PKI/ca.pem when that is set

placementd_repo() {
  (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
}

placementd_target() {
  echo "${CARGO_TARGET_DIR:-$HOME/.cache/placementd/target}"
}

# Writes out every dirty page before a benchmark measures. A build just before (cargo links
# a ~0.5 GB binary) leaves that much in the page cache; the kernel writes it back about 30 s
# later (vm.dirty_expire_centisecs), and every node's log fsync then queues behind it on the
# shared disk: with 1.5 GB of a dd's pages, heartbeats timed out and writes stalled 0.7 s
# (p99 402 ms at c=16). Costs nothing when nothing is dirty.
settle_disk() {
  sync
}

placementd_bin() {
  local c
  for c in "${PLACEMENTD_BIN:-}" \
           "${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/release/placementd}" \
           "$HOME/.cache/placementd/target/release/placementd" \
           "$(placementd_repo)/target/release/placementd"; do
    if [[ -n $c && -x $c ]]; then
      echo "$c"
      return 0
    fi
  done
  echo "placementd binary not found (set PLACEMENTD_BIN, or build it: " \
       "CARGO_TARGET_DIR=$(placementd_target) cargo build --release -p placementd)" >&2
  return 1
}

# curl's flags for the cluster's own CA (empty without TLS); set by cluster_pki.
CURL_TLS=()

wait_http() {  # URL SECS [PID]
  local url=$1 secs=$2 pid=${3:-} deadline
  deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${CURL_TLS[@]}" "$url" 2>/dev/null) == 200 ]]; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# ---- N-node cluster on loopback (scripts/conformance-server --nodes, scripts/bench --nodes)
#
# - free_ports N       print N free 127.0.0.1 TCP ports, one a line (bind port 0, read it,
#                      release it: a race with other processes is possible but rare; a node
#                      that cannot bind exits and cluster_start fails loudly)
# - cluster_plan N [PORT_BASE]
#                      pick the members' loopback ports: free ones, or with PORT_BASE fixed
#                      ones (node i: API PORT_BASE+10*i, peer that + 1). Sets
#                      CLUSTER_API_PORTS, CLUSTER_PEER_PORTS (arrays, index i-1 = node i) and
#                      CLUSTER_INITIAL (the --initial-cluster value)
# - cluster_pki BIN DIR   a cluster CA and certificates in DIR, made once with
#                      `placementd cert` (call after cluster_plan): node<i> for each planned
#                      member (named by its API and peer addresses), admin (for
#                      `placementd cluster`), and lb (HAProxy's frontend; lb-bundle.pem holds
#                      its certificate and key). Sets CLUSTER_PKI=DIR and CURL_TLS; from then
#                      on cluster_start runs every node with mutual TLS on the peer port and
#                      HTTPS on the API, and cluster_haproxy_config re-encrypts to the nodes
# - cluster_start BIN DIR N LOG SECS [FLAG...]
#                      start an N-node cluster (cluster_plan N $CLUSTER_PORT_BASE: free
#                      ports unless CLUSTER_PORT_BASE is set) with data in DIR/node<i> (an
#                      empty DIR makes a fresh cluster; one from an earlier start with the
#                      same ports resumes it), extra placementd FLAGs on every node;
#                      LOG is "-" (stderr) or a directory (node<i>.log there); waits up to
#                      SECS for every /readyz. Sets what cluster_plan sets and CLUSTER_PIDS.
#                      On free ports and a fresh DIR, a node that exits before it is ready
#                      (most often: another process took its port between free_ports and
#                      its bind) makes the whole cluster start again on new ports, up to
#                      CLUSTER_START_ATTEMPTS (3) times. Returns 1 (with a message) if a
#                      node is not ready.
# - cluster_leader_port   API port of the node whose /readyz says is_leader (empty if none)
# - cluster_haproxy_config BIND [tls]   print an HAProxy config on BIND (PORT, i.e.
#                      127.0.0.1:PORT, or HOST:PORT) for CLUSTER_API_PORTS, as
#                      deploy/haproxy.cfg: reads round-robin over the nodes whose /readyz
#                      passes; writes to the node whose /readyz/leader passes, round-robin
#                      while none does. LB_WRITES=any sends writes round-robin too (every
#                      follower forwards: what scripts/bench measures as the forwarding
#                      path). With `tls` the frontend serves HTTPS with the lb certificate
#                      of cluster_pki
# - cluster_snapshot BIN SECS   every member builds a snapshot (`placementd cluster
#                      snapshot` on its peer port) and compacts its log; waits up to SECS
#                      per member until its snapshot covers what it had applied when asked.
#                      Returns 1 (with a message) if one does not. (Plain HTTP clusters
#                      only: no cluster_pki.)
# - stop_pids SECS PID...  TERM every PID, wait up to SECS for each, then KILL and reap

free_ports() {  # N
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

cluster_plan() {  # N [PORT_BASE]
  local n=$1 base=${2:-} i
  local -a free members
  if [[ -z $base ]]; then
    mapfile -t free < <(free_ports $((2 * n)))
  else
    for ((i = 1; i <= n; i++)); do
      free+=($((base + 10 * i)) $((base + 10 * i + 1)))
    done
  fi
  CLUSTER_API_PORTS=()
  CLUSTER_PEER_PORTS=()
  for ((i = 1; i <= n; i++)); do
    CLUSTER_API_PORTS+=("${free[2 * i - 2]}")
    CLUSTER_PEER_PORTS+=("${free[2 * i - 1]}")
    members+=("$i=127.0.0.1:${free[2 * i - 2]}@127.0.0.1:${free[2 * i - 1]}")
  done
  CLUSTER_INITIAL=$(IFS=,; echo "${members[*]}")
}

cluster_pki() {  # BIN DIR
  local bin=$1 dir=$2 i
  mkdir -p "$dir"
  [[ -f $dir/ca.pem ]] || "$bin" cert --dir "$dir" ca >/dev/null
  [[ -f $dir/admin.pem ]] || "$bin" cert --dir "$dir" admin >/dev/null
  for ((i = 1; i <= ${#CLUSTER_API_PORTS[@]}; i++)); do
    [[ -f $dir/node$i.pem ]] || "$bin" cert --dir "$dir" node "$i" \
      --address "127.0.0.1:${CLUSTER_API_PORTS[i - 1]}" \
      --address "127.0.0.1:${CLUSTER_PEER_PORTS[i - 1]}" >/dev/null
  done
  if [[ ! -f $dir/lb.pem ]]; then
    "$bin" cert --dir "$dir" server lb --address 127.0.0.1 --address localhost >/dev/null
  fi
  # HAProxy reads a certificate and its key from one file (written whole, then renamed:
  # several scripts may share one PKI directory).
  if [[ ! -f $dir/lb-bundle.pem ]]; then
    (umask 077 && cat "$dir/lb.pem" "$dir/lb-key.pem" >"$dir/lb-bundle.pem.$$" &&
      mv -f "$dir/lb-bundle.pem.$$" "$dir/lb-bundle.pem")
  fi
  CLUSTER_PKI=$(cd "$dir" && pwd)
  CURL_TLS=(--cacert "$CLUSTER_PKI/ca.pem")
}

# The flags that make node I use the cluster's certificates (none without cluster_pki).
cluster_tls_flags() {  # I
  [[ -n ${CLUSTER_PKI:-} ]] || return 0
  local i=$1
  printf '%s\n' --peer-cert "$CLUSTER_PKI/node$i.pem" --peer-key "$CLUSTER_PKI/node$i-key.pem" \
    --peer-ca "$CLUSTER_PKI/ca.pem" --tls-cert "$CLUSTER_PKI/node$i.pem" \
    --tls-key "$CLUSTER_PKI/node$i-key.pem"
}

# The scheme of the nodes' API: https once cluster_pki ran.
cluster_scheme() {
  if [[ -n ${CLUSTER_PKI:-} ]]; then echo https; else echo http; fi
}

cluster_start() {  # BIN DIR N LOG SECS [FLAG...]
  local dir=$2 n=$3 attempts=${CLUSTER_START_ATTEMPTS:-3} attempt=1 i rc
  # Only a fresh cluster on free ports may start again elsewhere: fixed ports would race
  # again, and an existing data directory must not be wiped.
  local fresh=1
  [[ -z ${CLUSTER_PORT_BASE:-} ]] || fresh=0
  for ((i = 1; i <= n; i++)); do
    [[ ! -e $dir/node$i ]] || fresh=0
  done
  while true; do
    cluster_start_once "$@" && return 0
    rc=$?
    ((rc == 2 && fresh && attempt < attempts)) || return 1
    echo "cluster_start: starting the cluster again on new ports (attempt $((attempt + 1)) of $attempts)" >&2
    stop_pids 10 "${CLUSTER_PIDS[@]}"
    for ((i = 1; i <= n; i++)); do
      rm -rf "${dir:?}/node$i"
    done
    attempt=$((attempt + 1))
  done
}

# One try of cluster_start: returns 1 if a node is not ready in time, 2 if one exited.
cluster_start_once() {  # BIN DIR N LOG SECS [FLAG...]
  local bin=$1 dir=$2 n=$3 log=$4 secs=$5 i
  shift 5
  cluster_plan "$n" "${CLUSTER_PORT_BASE:-}"
  if [[ -n ${CLUSTER_PKI_DIR:-} ]]; then
    cluster_pki "$bin" "$CLUSTER_PKI_DIR"
  fi
  CLUSTER_PIDS=()
  for ((i = 1; i <= n; i++)); do
    local -a tls
    mapfile -t tls < <(cluster_tls_flags "$i")
    local -a node=("$bin" --listen "127.0.0.1:${CLUSTER_API_PORTS[i - 1]}"
                   --peer-listen "127.0.0.1:${CLUSTER_PEER_PORTS[i - 1]}" --data-dir "$dir/node$i"
                   --node-id "$i" --initial-cluster "$CLUSTER_INITIAL" "${tls[@]}" "$@")
    if [[ $log == - ]]; then
      "${node[@]}" >&2 &
    else
      "${node[@]}" >>"$log/node$i.log" 2>&1 &
    fi
    CLUSTER_PIDS+=($!)
  done
  for ((i = 1; i <= n; i++)); do
    if ! wait_http "$(cluster_scheme)://127.0.0.1:${CLUSTER_API_PORTS[i - 1]}/readyz" "$secs" "${CLUSTER_PIDS[i - 1]}"; then
      if kill -0 "${CLUSTER_PIDS[i - 1]}" 2>/dev/null; then
        echo "cluster_start: node $i did not become ready within ${secs}s" >&2
      else
        echo "cluster_start: node $i exited before it was ready" >&2
        return 2
      fi
      return 1
    fi
  done
}

cluster_leader_port() {
  local p
  for p in "${CLUSTER_API_PORTS[@]}"; do
    if curl -s --max-time 2 "${CURL_TLS[@]}" "$(cluster_scheme)://127.0.0.1:$p/readyz" | grep -q '"is_leader": *true'; then
      echo "$p"
      return 0
    fi
  done
}

cluster_haproxy_config() {  # BIND [tls]
  local p i bind=$1 frontend_tls=${2:-} server_tls="" backend
  local writes=${LB_WRITES:-leader}
  [[ $writes == leader || $writes == any ]] || { echo "LB_WRITES: leader or any, not $writes" >&2; return 1; }
  [[ $bind == *:* ]] || bind=127.0.0.1:$bind
  if [[ $frontend_tls == tls ]]; then
    bind="$bind ssl crt $CLUSTER_PKI/lb-bundle.pem alpn http/1.1"
  fi
  cat <<CFG
# Generated for one run by scripts/lib.sh cluster_haproxy_config (LB_WRITES=$writes);
# see deploy/haproxy.cfg.
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 2
    option redispatch
frontend placement
    bind $bind
CFG
  if [[ $writes == leader ]]; then
    cat <<CFG
    acl write method POST PUT PATCH DELETE
    use_backend leader if write { nbsrv(leader) gt 0 }
CFG
  fi
  echo "    default_backend placementd"
  for backend in placementd leader; do
    [[ $backend == leader && $writes == any ]] && continue
    cat <<CFG
backend $backend
    balance roundrobin
    option httpchk GET /readyz$([[ $backend == leader ]] && echo /leader)
    http-check expect status 200
CFG
    if [[ $backend == leader ]]; then
      echo "    default-server inter 500ms fall 1 rise 1 observe layer4 error-limit 1 on-error mark-down"
    else
      echo "    default-server inter 500ms fall 2 rise 1"
    fi
    i=0
    for p in "${CLUSTER_API_PORTS[@]}"; do
      i=$((i + 1))
      # With TLS the nodes serve HTTPS: HAProxy re-encrypts and checks the node's
      # certificate against the cluster CA and its name.
      [[ -z ${CLUSTER_PKI:-} ]] ||
        server_tls=" ssl verify required ca-file $CLUSTER_PKI/ca.pem verifyhost node$i sni str(node$i)"
      echo "    server node$i 127.0.0.1:$p check$server_tls"
    done
  done
}

cluster_snapshot() {  # BIN SECS
  local bin=$1 secs=$2 i want_idx have deadline peer asked
  for ((i = 1; i <= ${#CLUSTER_API_PORTS[@]}; i++)); do
    peer=127.0.0.1:${CLUSTER_PEER_PORTS[i - 1]}
    want_idx=$(curl -s --max-time 2 "http://127.0.0.1:${CLUSTER_API_PORTS[i - 1]}/readyz" |
                 python3 -c 'import json,sys; print(json.load(sys.stdin).get("applied_index") or 0)') || want_idx=
    [[ -n $want_idx ]] || { echo "cluster_snapshot: node$i does not answer /readyz" >&2; return 1; }
    deadline=$((SECONDS + secs))
    # `snapshot` only asks for one, and a request that comes while the node is building one
    # (its own, every 100,000 entries) is dropped: ask again every 5 s until the status
    # shows a snapshot at or past what the node had applied.
    asked=-5
    until have=$("$bin" cluster --peer "$peer" status |
                   python3 -c 'import json,sys; print(json.load(sys.stdin).get("snapshot_index") or 0)') &&
          ((have >= want_idx)); do
      ((SECONDS < deadline)) || { echo "cluster_snapshot: node$i built no snapshot within $secs s" >&2; return 1; }
      if ((SECONDS - asked >= 5)); then
        "$bin" cluster --peer "$peer" snapshot >/dev/null || return 1
        asked=$SECONDS
      fi
      sleep 0.2
    done
  done
}

# The VM's steal time and all CPU time so far, in clock ticks (/proc/stat's first line): a
# benchmark run with steal in it is slower for a reason outside its target.
steal_total() { awk '/^cpu /{t=0; for (i = 2; i <= NF; i++) t += $i; print $9, t; exit}' /proc/stat; }
steal_pct_since() {  # TOTAL (from steal_total): steal % of all CPU time since then
  awk -v a="$1" -v b="$(steal_total)" \
    'BEGIN{split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; printf "%.1f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0)}'
}

stop_pids() {  # SECS PID...
  local secs=$1 p deadline
  shift
  for p in "$@"; do
    if [[ -n $p ]]; then kill -TERM "$p" 2>/dev/null || true; fi
  done
  for p in "$@"; do
    [[ -n $p ]] || continue
    deadline=$((SECONDS + secs))
    while kill -0 "$p" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
