# Shared helpers for scripts/*; sourced, never run. Bash only.
#
# - placementd_repo     absolute path of the repository root
# - placementd_target   the cargo target dir every script uses (the shared release dir, so
#                       the bundled RocksDB is built once per machine)
# - placementd_bin      the placementd binary to run, WITHOUT building anything:
#                       $PLACEMENTD_BIN, else $CARGO_TARGET_DIR/release/placementd,
#                       else $HOME/.cache/placementd/target/release/placementd,
#                       else <repo>/target/release/placementd
# - wait_http URL SECS [PID]   poll GET URL until it answers 200 (fails early if PID died)

placementd_repo() {
  (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
}

placementd_target() {
  echo "${CARGO_TARGET_DIR:-$HOME/.cache/placementd/target}"
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

wait_http() {  # URL SECS [PID]
  local url=$1 secs=$2 pid=${3:-} deadline
  deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) == 200 ]]; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}
