#!/usr/bin/env bash
# Start, stop or check the four service processes against the local stack.
# Usage: deploy/local/services.sh {start|stop|status|kill9 NAME|restart NAME}
set -euo pipefail
COMPONENT=services
# shellcheck source=deploy/local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=deploy/local/env.sh
source "$LOCAL_DIR/env.sh"

SERVICES=(catalogue registration billing notifications)
declare -A PORTS=([catalogue]=8001 [registration]=8002 [billing]=8003 [notifications]=8004)
PY="$ROOT/.venv/bin/python"

# The local stack's admin key, `local-dev-admin-key`, known to every service only by its SHA-256 hash.
LOCAL_KEY_HASH="$("$PY" -c 'from komponent_runtime.auth import LOCAL_DEV_KEY, hash_key; print(hash_key(LOCAL_DEV_KEY))')"
export API_KEYS="local:$LOCAL_KEY_HASH:*"
# Notifications fetches invoice PDFs from billing with its own key.
export BILLING_URL="http://127.0.0.1:${PORTS[billing]}" BILLING_API_KEY="local-dev-admin-key"

pidfile() { echo "$VAR/run/$1.pid"; }
marker() { echo "komponent_$1"; }

start_one() {
  local name="$1" port="${PORTS[$1]}" pid
  if pid="$(running_pid "$(pidfile "$name")" "$(marker "$name")")"; then
    log "$name already running (pid $pid)"
    return 0
  fi
  log "starting $name on 127.0.0.1:$port"
  HTTP_PORT="$port" SERVICE_NAME="$name" start_daemon "$(pidfile "$name")" "$VAR/log/$name.log" \
    "$PY" -m "komponent_$name"
}

wait_ready() {
  local name="$1" port="${PORTS[$1]}" deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    if curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then
      log "$name ready"
      return 0
    fi
    if ! running_pid "$(pidfile "$name")" "$(marker "$name")" >/dev/null; then
      log_tail "$VAR/log/$name.log"
      die "$name exited during start-up"
    fi
    sleep 0.3
  done
  log_tail "$VAR/log/$name.log"
  die "$name not ready within 90 s"
}

case "${1:-}" in
  start)
    for s in "${SERVICES[@]}"; do start_one "$s"; done
    for s in "${SERVICES[@]}"; do wait_ready "$s"; done
    ;;
  stop)
    for s in "${SERVICES[@]}"; do stop_pidfile "$(pidfile "$s")" "$(marker "$s")" 20 "$s"; done
    ;;
  status)
    rc=0
    for s in "${SERVICES[@]}"; do
      if pid="$(running_pid "$(pidfile "$s")" "$(marker "$s")")"; then
        echo "$s: running (pid $pid) on http://127.0.0.1:${PORTS[$s]}"
      else
        echo "$s: stopped"
        rc=1
      fi
    done
    exit "$rc"
    ;;
  kill9) kill9_pidfile "$(pidfile "$2")" "$(marker "$2")" "$2" ;;
  restart)
    stop_pidfile "$(pidfile "$2")" "$(marker "$2")" 20 "$2"
    start_one "$2"
    wait_ready "$2"
    ;;
  *)
    echo "usage: $0 {start|stop|status|kill9 NAME|restart NAME}" >&2
    exit 2
    ;;
esac
