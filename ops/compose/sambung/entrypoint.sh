#!/bin/sh
# Points the engine at the compose secrets, then runs `sambung <command>` (default: run).
# Secrets stay out of compose.yaml and `docker inspect`: only the files under /run/secrets
# hold them. The engine reads a secret file itself through the NAME_FILE form of a variable
# (sambung/engine/config.py), so the values never pass through this shell:
#   /run/secrets/ari_password       -> SAMBUNG_ARI__PASSWORD_FILE
#   /run/secrets/ami_secret         -> SAMBUNG_AMI__SECRET_FILE
#   /run/secrets/sambung_api_token  -> SAMBUNG_API_TOKEN_FILE
#   /run/secrets/postgres_password  -> DATABASE_URL (with POSTGRES_USER, POSTGRES_DB,
#                                      POSTGRES_HOST, POSTGRES_PORT)
#   /run/secrets/sambung_metrics_token -> SAMBUNG_METRICS_TOKEN_FILE (Prometheus's; /metrics
#                                         only; Prometheus reads the same file)
# A variable the operator set already (NAME or NAME_FILE) is left alone: the engine refuses
# both forms of one variable at once.
# For `run`, the settings are checked first (`sambung check-config`, with run's own options),
# then pending migrations are applied, as the systemd unit does: a database that is down does
# not stop the engine (it queues facts); a failed migration stays pending and `sambung run`
# refuses to start.
set -eu

secret() {  # $1: file; the value without its trailing newline
  [ -r "$1" ] || { echo "sambung-entrypoint: missing secret $1" >&2; exit 2; }
  tr -d '\n' <"$1"
}

# The database secret is the bare password, shared with the postgres container
# (POSTGRES_PASSWORD_FILE), so DATABASE_URL_FILE cannot point at it: the URL is assembled
# here, with the password percent-encoded, and passed as DATABASE_URL.
if [ -z "${DATABASE_URL:-}" ] && [ -z "${DATABASE_URL_FILE:-}" ] \
  && [ -e /run/secrets/postgres_password ]; then
  DATABASE_URL=$(python - "$(secret /run/secrets/postgres_password)" <<'PY'
import os, sys
from urllib.parse import quote
user = quote(os.environ.get("POSTGRES_USER", "sambung"), safe="")
password = quote(sys.argv[1], safe="")
host = os.environ.get("POSTGRES_HOST", "127.0.0.1")
port = os.environ.get("POSTGRES_PORT", "5432")
db = quote(os.environ.get("POSTGRES_DB", "sambung"), safe="")
print(f"postgresql://{user}:{password}@{host}:{port}/{db}")
PY
)
  export DATABASE_URL
fi
from_file() {  # $1: variable name, $2: secret file; NAME_FILE=file unless NAME is set either way
  eval "set_already=\${$1+x}\${$1_FILE+x}"
  if [ -z "$set_already" ] && [ -e "$2" ]; then
    export "$1_FILE=$2"
  fi
}
from_file SAMBUNG_ARI__PASSWORD /run/secrets/ari_password
from_file SAMBUNG_AMI__SECRET /run/secrets/ami_secret
from_file SAMBUNG_API_TOKEN /run/secrets/sambung_api_token
from_file SAMBUNG_METRICS_TOKEN /run/secrets/sambung_metrics_token

if [ "${1:-run}" = run ]; then
  # The same checks the engine makes at start-up (settings, flows, calendars, credentials), so
  # a bad file stops the container here with its message rather than in a restart loop later.
  # Its exit code is the container's (2: bad settings, 1: a broken install).
  check_config() { [ $# -gt 0 ] && shift; sambung check-config "$@"; }  # run -c FILE -> -c FILE
  check_config "$@" || exit $?
  sambung migrate || echo "sambung-entrypoint: migrate failed (exit $?); starting anyway" >&2
fi
exec sambung "$@"
