#!/usr/bin/env bash
# Local SMTP sink: deploy/local/smtp_sink.py on 127.0.0.1:2525, storing messages in var/mail/*.eml.
#
# Usage: deploy/local/smtp.sh {start [SINK OPTIONS...]|stop|status|kill9}
#   start   start the sink unless it already runs (extra options, e.g. --reject-permanent REGEX,
#           are passed to smtp_sink.py; they only apply when this call actually starts it)
#   stop    SIGTERM (SIGKILL after 10 s)
#   status  exit 0 when it accepts connections, 3 when not
#   kill9   SIGKILL (fault tests)
set -euo pipefail

# shellcheck disable=SC2034  # read by common.sh's log()
COMPONENT=smtp
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SMTP_VAR="$VAR/smtp"
MAIL_DIR="$VAR/mail"
PIDFILE="$SMTP_VAR/smtp.pid"
LOGFILE="$SMTP_VAR/smtp.log"
LOCK="$SMTP_VAR/.lock"
SINK="$LOCAL_DIR/smtp_sink.py"
PYTHON="$ROOT/.venv/bin/python"
MARKER="$SINK"

do_start() {
  take_lock "$LOCK"
  local pid
  if pid="$(running_pid "$PIDFILE" "$MARKER")"; then
    [[ $# -eq 0 ]] || log "already running; options '$*' ignored (stop it first to change them)"
    log "already running (pid $pid) on $SMTP_HOST:$SMTP_PORT"
    wait_for_port "$SMTP_HOST" "$SMTP_PORT" 20 "$pid" || die "running but not listening"
    return 0
  fi
  [[ -x "$PYTHON" ]] || die "$PYTHON missing; run 'uv sync --python python3.11' at the repo root"
  if port_open "$SMTP_HOST" "$SMTP_PORT"; then
    die "port $SMTP_HOST:$SMTP_PORT is taken by another process (not this checkout's sink)"
  fi
  mkdir -p "$MAIL_DIR"
  start_daemon "$PIDFILE" "$LOGFILE" \
    "$PYTHON" -u "$SINK" --host "$SMTP_HOST" --port "$SMTP_PORT" --maildir "$MAIL_DIR" "$@"
  pid="$(cat "$PIDFILE")"
  if ! wait_for_port "$SMTP_HOST" "$SMTP_PORT" 20 "$pid"; then
    log_tail "$LOGFILE" 20
    die "SMTP sink did not start listening on $SMTP_HOST:$SMTP_PORT"
  fi
  log "ready on $SMTP_HOST:$SMTP_PORT (pid $pid), storing mail in $MAIL_DIR"
}

do_status() {
  local pid
  if pid="$(running_pid "$PIDFILE" "$MARKER")" && port_open "$SMTP_HOST" "$SMTP_PORT"; then
    echo "smtp: running (pid $pid) on $SMTP_HOST:$SMTP_PORT, mail in $MAIL_DIR"
    return 0
  fi
  echo "smtp: not running"
  return 3
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) do_start "$@" ;;
  stop)
    take_lock "$LOCK"
    stop_pidfile "$PIDFILE" "$MARKER" 10 "SMTP sink"
    ;;
  status) do_status ;;
  kill9) kill9_pidfile "$PIDFILE" "$MARKER" "SMTP sink" ;;
  *)
    echo "usage: $0 {start [SINK OPTIONS...]|stop|status|kill9}" >&2
    exit 2
    ;;
esac
