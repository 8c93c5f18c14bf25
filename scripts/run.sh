#!/usr/bin/env bash
# Run Flotilla on this machine: installs what is missing, starts PostgreSQL, migrates,
# creates the demo org and admin, then runs the web server and the worker until Ctrl-C.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_venv
ensure_postgres
ensure_local_provider
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.dev}"
HOST="${FLOTILLA_HOST:-127.0.0.1}"
PORT="${FLOTILLA_PORT:-8000}"

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
"$PY" manage.py qcluster &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM
"$PY" -m daphne -b "$HOST" -p "$PORT" config.asgi:application
