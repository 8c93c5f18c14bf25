#!/usr/bin/env bash
# Install and run Flotilla on this host: installs what is missing, starts PostgreSQL, migrates,
# creates the demo org and admin, then runs the web server and the worker until Ctrl-C.
# A single-host install, not a dev server: DEBUG is off and the secrets are generated on the
# first run into the data directory (config/settings/host.py, config/install_secrets.py).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_venv
ensure_postgres
ensure_local_provider
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.host}"
HOST="${FLOTILLA_HOST:-127.0.0.1}"
PORT="${FLOTILLA_PORT:-8000}"
# One web process per core: each serves HTTP and websockets (the channel layer joins them).
WEB_PROCESSES="${FLOTILLA_WEB_PROCESSES:-$(nproc)}"
if [[ -z "${FLOTILLA_PUBLIC_URL:-}" && "$HOST" != "127.0.0.1" && "$HOST" != "localhost" && "$HOST" != "::1" ]]; then
  log "Warning: serving plain HTTP on $HOST; put a TLS proxy in front and set FLOTILLA_PUBLIC_URL=https://..."
fi

log "Migrating the database"
"$PY" manage.py prepare_database -v0
"$PY" manage.py collectstatic --noinput -v0
"$PY" manage.py create_demo --url "http://$HOST:$PORT"
"$PY" manage.py prepare_clusters -v0
if [[ -f clusters/local/runtime.py ]]; then
  log "Restarting local clusters that should be running"
  "$PY" manage.py local_clusters ensure-running
fi

log "Starting the worker and the web server (Ctrl-C stops both)"
"$PY" manage.py worker &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM
log "Secrets of this install (secret key, encryption keys, metrics token): $FLOTILLA_DATA_DIR/secrets.json"
"$VENV/bin/uvicorn" config.asgi:application --host "$HOST" --port "$PORT" --workers "$WEB_PROCESSES" \
  --lifespan off --no-access-log --no-server-header \
  --proxy-headers --forwarded-allow-ips "${FLOTILLA_FORWARDED_ALLOW_IPS:-127.0.0.1}"
