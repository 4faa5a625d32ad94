#!/bin/sh
# Turns the compose secrets into the environment the engine reads (engine/config.py), then
# runs `sambung <command>` (default: run). Secrets stay out of compose.yaml and `docker
# inspect`: only the files under /run/secrets hold them.
#   /run/secrets/postgres_password  -> DATABASE_URL (with POSTGRES_USER, POSTGRES_DB,
#                                      POSTGRES_HOST, POSTGRES_PORT)
#   /run/secrets/sambung_api_token  -> SAMBUNG_API_TOKEN
#   /run/secrets/sambung_metrics_token -> SAMBUNG_METRICS_TOKEN (Prometheus's; /metrics only)
#   /run/secrets/ari_password       -> SAMBUNG_ARI__PASSWORD
#   /run/secrets/ami_secret         -> SAMBUNG_AMI__SECRET
# For `run`, pending migrations are applied first, as the systemd unit does: a database that
# is down does not stop the engine (it queues facts); a failed migration stays pending and
# `sambung run` refuses to start.
set -eu

secret() {  # $1: file; the value without its trailing newline
  [ -r "$1" ] || { echo "sambung-entrypoint: missing secret $1" >&2; exit 2; }
  tr -d '\n' <"$1"
}

if [ -z "${DATABASE_URL:-}" ] && [ -e /run/secrets/postgres_password ]; then
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
if [ -e /run/secrets/sambung_api_token ]; then
  SAMBUNG_API_TOKEN=$(secret /run/secrets/sambung_api_token); export SAMBUNG_API_TOKEN
fi
if [ -e /run/secrets/sambung_metrics_token ]; then
  SAMBUNG_METRICS_TOKEN=$(secret /run/secrets/sambung_metrics_token); export SAMBUNG_METRICS_TOKEN
fi
if [ -e /run/secrets/ari_password ]; then
  SAMBUNG_ARI__PASSWORD=$(secret /run/secrets/ari_password); export SAMBUNG_ARI__PASSWORD
fi
if [ -e /run/secrets/ami_secret ]; then
  SAMBUNG_AMI__SECRET=$(secret /run/secrets/ami_secret); export SAMBUNG_AMI__SECRET
fi

if [ "${1:-run}" = run ]; then
  sambung migrate || echo "sambung-entrypoint: migrate failed (exit $?); starting anyway" >&2
fi
exec sambung "$@"
