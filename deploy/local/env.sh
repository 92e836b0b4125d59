#!/usr/bin/env bash
# The environment the services and tests use against the local stack (deploy/local/*.sh).
#
#   source deploy/local/env.sh       # export into the current shell
#   eval "$(deploy/local/env.sh)"    # same, from any shell
#   deploy/local/env.sh              # print the export lines
#
# Values mirror common.sh, including its overrides (KAFKA_PORT, PG_PORT, SMTP_PORT, KOMPONENT_VAR_DIR).
# Local development only (trust auth, no TLS).

# Works whether sourced or executed; when sourced it must not change the caller's shell options.
_komponent_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
_komponent_env() {
  cat <<ENV
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:${KAFKA_PORT:-19092}
export PGHOST=127.0.0.1
export PGPORT=${PG_PORT:-55432}
export PGUSER=komponent
export PGPASSWORD=komponent
export SMTP_HOST=127.0.0.1
export SMTP_PORT=${SMTP_PORT:-2525}
export MAIL_DIR=$(printf '%q' "${KOMPONENT_VAR_DIR:-$_komponent_root/var}/mail")
ENV
}

if (return 0 2>/dev/null); then
  eval "$(_komponent_env)"
  unset -f _komponent_env
  unset _komponent_root
else
  set -euo pipefail
  _komponent_env
fi
