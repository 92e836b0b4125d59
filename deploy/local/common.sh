# shellcheck shell=bash disable=SC2034  # constants here are read by the scripts that source this file
# Helpers sourced by the local-stack scripts in deploy/local/. Not executable on its own.
#
# Everything the stack writes lives under $VAR (the ignored var/ folder at the repository root), so a
# checkout can be reset with `rm -rf var` once every service is stopped.

# The repository root is derived from this file's location, not from the caller's cwd or git, so the
# scripts also work from an exported tarball and from any working directory. `pwd -P` resolves
# symlinks so the same checkout always yields the same path (the PostgreSQL fallback hashes it).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# KOMPONENT_VAR_DIR moves the whole stack's state elsewhere, e.g. a private stack for the fault tests.
VAR="${KOMPONENT_VAR_DIR:-$ROOT/var}"
LOCAL_DIR="$ROOT/deploy/local"
export ROOT VAR LOCAL_DIR

# Local ports: one place, mirrored by env.sh. They avoid the well-known defaults (9092, 5432, 25)
# so a system Kafka/PostgreSQL/MTA on the same machine never collides with the dev stack. The
# environment may override the ports (together with KOMPONENT_VAR_DIR) to run a second, private stack,
# e.g. tests/faults/ which kills its own broker and database; the defaults are the shared dev stack.
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
PG_HOST=127.0.0.1
PG_PORT="${PG_PORT:-55432}"
SMTP_HOST=127.0.0.1
SMTP_PORT="${SMTP_PORT:-2525}"

COMPONENT="${COMPONENT:-local}"

log() { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "$COMPONENT" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# Serialise start/stop/fetch per component so two concurrent callers (e.g. parallel CI steps) cannot
# both decide "not running" and launch twice. The lock is released when the calling script exits.
take_lock() {
  local lockfile="$1"
  mkdir -p "$(dirname "$lockfile")"
  exec 9>"$lockfile"
  flock -w 600 9 || die "could not take lock $lockfile within 600 s"
}

# pid_matches PID MARKER: the process is alive and its command line contains MARKER. The marker check
# guards against pid reuse after a reboot or a crash leaving a stale pid file behind.
pid_matches() {
  local pid="$1" marker="$2"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local cmdline
  # Read into a variable first: piping into `grep -q` could SIGPIPE tr and fail under pipefail.
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$marker"* ]]
}

# running_pid PIDFILE MARKER: print the pid and succeed when the recorded process is ours and alive;
# remove a stale pid file otherwise.
running_pid() {
  local pidfile="$1" marker="$2" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(head -n1 "$pidfile" 2>/dev/null || true)"
  if pid_matches "$pid" "$marker"; then
    printf '%s\n' "$pid"
    return 0
  fi
  rm -f "$pidfile"
  return 1
}

# start_daemon PIDFILE LOGFILE CMD...: run CMD detached (own session, no terminal, stdin closed) so a
# Ctrl-C or hang-up in the calling shell does not take the service down. The child writes its own pid
# before exec'ing, which stays correct even if setsid has to fork. fd 9 (take_lock) is closed so the
# long-running service never holds the start/stop lock.
start_daemon() {
  local pidfile="$1" logfile="$2"
  shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ must expand in the child shell, not here
  nohup setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
    >>"$logfile" 2>&1 </dev/null 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.05
  done
  die "process did not record its pid in $pidfile"
}

# port_open HOST PORT: something accepts TCP connections there.
port_open() {
  # shellcheck disable=SC2016  # $0/$1 expand in the child shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# wait_for_port HOST PORT TIMEOUT_S [PID]: wait until the port accepts connections; give up early when
# PID (the process expected to open it) has died.
wait_for_port() {
  local host="$1" port="$2" timeout_s="$3" pid="${4:-}"
  local deadline=$((SECONDS + timeout_s))
  while ((SECONDS < deadline)); do
    if port_open "$host" "$port"; then
      return 0
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 2
    fi
    sleep 0.2
  done
  return 1
}

# stop_pidfile PIDFILE MARKER TIMEOUT_S NAME: SIGTERM, wait up to TIMEOUT_S, then SIGKILL.
stop_pidfile() {
  local pidfile="$1" marker="$2" timeout_s="$3" name="$4" pid
  if ! pid="$(running_pid "$pidfile" "$marker")"; then
    log "$name is not running"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout_s))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop within ${timeout_s}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$pidfile"
  log "$name stopped"
}

# kill9_pidfile PIDFILE MARKER NAME: simulate a crash (no shutdown hooks, no flush).
kill9_pidfile() {
  local pidfile="$1" marker="$2" name="$3" pid
  if ! pid="$(running_pid "$pidfile" "$marker")"; then
    log "$name is not running"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$pidfile"
  log "$name killed with SIGKILL (pid $pid)"
}

# log_tail FILE [N]: show the end of a log on stderr, for error messages.
log_tail() {
  local file="$1" n="${2:-40}"
  if [[ -f "$file" ]]; then
    log "last $n lines of $file:"
    tail -n "$n" "$file" >&2 || true
  else
    log "(no log file at $file)"
  fi
}
