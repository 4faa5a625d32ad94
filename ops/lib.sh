# Shared set-up steps for ops/demo and ops/test. Sourced, not run.
# Each step checks before it acts, so running it again on a prepared machine costs seconds.

SAMBUNG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$SAMBUNG_ROOT/.venv"
PG_SERVER_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'sambung: %s\n' "$*" >&2; exit 2; }

require_root_debian() {
  [ "$(id -u)" = 0 ] || die "run this as root (it installs packages and starts Asterisk in a chroot)"
  [ -r /etc/debian_version ] || die "this set-up is written for Debian 12; /etc/debian_version is missing"
}

apt_install() {
  # apt-get update only when something is actually missing.
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

newest_python() {
  # The newest python3.X (3.11 or later) on PATH, else python3 if that is 3.11 or later;
  # prints its name, or nothing. pyproject.toml supports 3.11 and every later 3.x, and the suite
  # runs on the newest one the machine has, so CI meets a new Python as soon as the machine does.
  local name
  for name in $(compgen -c python3. | grep -E '^python3\.[0-9]+$' | sort -u -t. -k2,2nr) python3; do
    command -v "$name" >/dev/null || continue
    if "$name" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$name"
      return 0
    fi
  done
  return 0  # none: the caller sees an empty answer (a failure here would trip set -e)
}

ensure_python() {
  local py; py=$(newest_python)
  if [ -z "$py" ]; then
    command -v python3 >/dev/null || apt_install python3
    py=$(newest_python)
    [ -n "$py" ] || die "Python 3.11 or later is required (found $(python3 --version 2>&1))"
  fi
  local ver; ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  # Debian splits venv and ensurepip out per version (python3.11-venv, python3.12-venv ...).
  "$py" -c 'import ensurepip, venv' 2>/dev/null || apt_install "python$ver-venv"
  # A virtualenv made earlier with a Python that is still 3.11 or later is kept as it is:
  # rebuilding it whenever a newer Python appears would throw away a working setup.
  if [ -x "$VENV/bin/python" ] \
    && ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    say "replacing $VENV (its Python is older than 3.11 or broken)"
    rm -rf "$VENV"
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $py ($ver)"
    "$py" -m venv "$VENV"
  fi
  install_python_deps
}

install_python_deps() {
  # The exact versions in requirements-dev.lock (hash-checked), then the project itself without
  # dependencies, so nothing but the lock decides what is installed. pyproject.toml keeps the
  # ranges the lock is generated from (CONTRIBUTING.md). Runs again only when pyproject.toml
  # or a lock file changed since the last install.
  local stamp="$VENV/.sambung-installed" f changed=
  for f in pyproject.toml requirements.lock requirements-dev.lock; do
    if [ "$SAMBUNG_ROOT/$f" -nt "$stamp" ]; then changed=1; fi
  done
  [ -f "$stamp" ] && [ -z "$changed" ] && return 0
  say "installing Python dependencies (requirements-dev.lock)"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q --require-hashes -r "$SAMBUNG_ROOT/requirements-dev.lock"
  "$VENV/bin/pip" install -q --no-deps -e "$SAMBUNG_ROOT"
  touch "$stamp"
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ] && [ "${SAMBUNG_MANAGE_PG:-}" != 1 ]; then
    return 0  # someone else's server: use it as given
  fi
  command -v pg_isready >/dev/null || apt_install postgresql-client
  if pg_ready; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
    local conf; conf=$(ls -d /etc/postgresql/*/main | head -n1)
    # Development and test server only: trust connections from this machine's loopback.
    sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/' "$conf/pg_hba.conf"
    sed -i -E 's/^(host\s+all\s+all\s+::1\/128\s+)\S+/\1trust/' "$conf/pg_hba.conf"
  fi
  local ver; ver=$(ls /etc/postgresql | sort -V | tail -n1)
  say "starting PostgreSQL $ver"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null \
    || pg_ctlcluster "$ver" main start
  for _ in $(seq 1 30); do pg_ready && return 0; sleep 1; done
  die "PostgreSQL did not become ready on 127.0.0.1:5432"
}

ensure_database() {
  # $1: database name. Created on the server named by DATABASE_URL (or the local one).
  "$VENV/bin/python" - "$PG_SERVER_URL" "$1" <<'PY'
import asyncio, sys
from urllib.parse import urlsplit, urlunsplit
import asyncpg

async def main(server: str, name: str) -> None:
    admin = urlunsplit(urlsplit(server)._replace(path="/postgres"))
    conn = await asyncpg.connect(admin)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}", file=sys.stderr)
    finally:
        await conn.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
PY
}

database_url_for() {
  "$VENV/bin/python" -c 'import sys; from urllib.parse import urlsplit, urlunsplit; print(urlunsplit(urlsplit(sys.argv[1])._replace(path="/" + sys.argv[2])))' "$PG_SERVER_URL" "$1"
}

ensure_ops_tools() {
  # What tests/unit/test_ops_pack.py validates the operations pack with (ops/prometheus,
  # ops/grafana, ops/compose):
  # - promtool, Prometheus's config and rule checker. Debian 12 ships it only inside the
  #   `prometheus` package, whose install pulls in ten web-asset packages, adds a system
  #   user, enables the server and starts it (invoke-rc.d on machines without systemd, the unit
  #   with it). So the package is downloaded and only its /usr/bin/promtool (linked against
  #   libc alone) is copied into the virtualenv: no server, no user, nothing left running.
  # - docker-compose 1.29 from Debian, whose `config -q` checks ops/compose/compose.yaml
  #   against the Compose file schema without a Docker daemon (pure Python dependencies only).
  apt_install docker-compose
  [ -x "$VENV/bin/promtool" ] && return 0
  local tmp; tmp=$(mktemp -d)
  chown _apt "$tmp" 2>/dev/null || true  # apt-get download drops root for the transfer
  say "installing promtool (from Debian's prometheus package) into $VENV/bin"
  if ! (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); then
    apt-get update -qq
    (cd "$tmp" && apt-get download -qq prometheus >/dev/null) || { rm -rf "$tmp"; die "could not download Debian's prometheus package"; }
  fi
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool \
    || { rm -rf "$tmp"; die "Debian's prometheus package has no usr/bin/promtool"; }
  install -m 755 "$tmp/usr/bin/promtool" "$VENV/bin/promtool"
  rm -rf "$tmp"
}

ensure_web_assets() {
  # The console's two front-end libraries (htmx and its SSE extension), from the npm registry
  # at the versions in sambung/console/web/package-lock.json. The engine serves the committed copies in
  # sambung/console/static/vendor (package data); tests/unit/test_install_paths.py checks that those
  # are byte for byte what npm installs here, so the registry's integrity hashes vouch for them.
  local dir="$SAMBUNG_ROOT/sambung/console/web"
  local stamp="$dir/node_modules/.sambung-installed"
  if [ -f "$stamp" ] && [ ! "$dir/package-lock.json" -nt "$stamp" ]; then return 0; fi
  command -v npm >/dev/null || apt_install nodejs npm
  say "installing the console's front-end libraries (npm ci)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$stamp"
}

ensure_browser() {
  # Headless Chromium for the console's browser tests, from Debian (Playwright drives it; its
  # own browser download is not used).
  command -v chromium >/dev/null || apt_install chromium
}
