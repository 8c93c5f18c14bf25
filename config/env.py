"""Typed readers for the FLOTILLA_* environment variables that drive the settings."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    """Return the variable, or the default when unset or empty."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_bool(name: str, default: bool = False) -> bool:
    """Parse a boolean variable: 1/true/yes/on (any case) mean True."""
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (got {raw!r})")


def env_int(name: str, default: int) -> int:
    """Parse an integer variable."""
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer (got {raw!r})") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """Parse a comma-separated variable into a list of stripped, non-empty items."""
    raw = os.environ.get(name, "")
    if raw == "":
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def _pool_options() -> dict[str, Any]:
    return {"pool": {"min_size": 1, "max_size": env_int("FLOTILLA_DB_POOL_SIZE", 10), "timeout": 10}}


def database_from_url(url: str) -> dict[str, Any]:
    """Turn postgres://user:pass@host:port/name?sslmode=... into a Django DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured("FLOTILLA_DATABASE_URL must be a postgres:// URL")
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    host = unquote(parsed.hostname or "")
    # A ?host=/path query names a Unix socket directory, as libpq allows.
    if "host" in options:
        host = options.pop("host")
    # The ASGI web process runs every request in a thread of its own, so per-thread persistent
    # connections would pile up; it shares a psycopg pool instead (config/asgi.py turns it on).
    # Forking processes (the django-q2 worker) keep plain per-process connections: a pool
    # inherited across fork would hand the same socket to several processes.
    pooled = env_bool("FLOTILLA_DB_POOL", False)
    return {
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": unquote(parsed.path.lstrip("/")) or "flotilla",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(parsed.port or ""),
        "OPTIONS": (_pool_options() | options) if pooled else options,
        "CONN_MAX_AGE": 0 if pooled else env_int("FLOTILLA_DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": not pooled,
        "ATOMIC_REQUESTS": False,
    }
