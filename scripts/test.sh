#!/usr/bin/env bash
# The whole test suite: installs what is missing, starts PostgreSQL, builds (once) the local
# Kubernetes binaries, then lint, format, types, Django checks and pytest. Extra arguments
# go to pytest (e.g. scripts/test.sh -k tokens).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_venv
ensure_postgres
ensure_chromium
ensure_redis_server
ensure_local_provider
export DJANGO_SETTINGS_MODULE=config.settings.test

log "ruff (lint and format)"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
log "mypy"
"$VENV/bin/mypy" .
log "Django checks"
"$PY" manage.py check
"$PY" manage.py makemigrations --check --dry-run
log "pytest"
"$PY" -m pytest "$@"
