"""A throw-away database for a benchmark run, so benchmarks never touch real data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg
from psycopg import sql


def default_url() -> str:
    """The database scripts/run.sh and scripts/test.sh set up (its password from the data dir)."""
    data_dir = Path(os.environ.get("FLOTILLA_DATA_DIR") or Path.home() / ".local" / "share" / "flotilla")
    password_file = data_dir / "pg-password"
    password = password_file.read_text().strip() if password_file.exists() else "flotilla"
    return f"postgres://flotilla:{password}@127.0.0.1:5432/flotilla"


@contextmanager
def bench_database(name: str) -> Iterator[str]:
    """Create database `name` next to FLOTILLA_DATABASE_URL's, yield its URL, drop it after."""
    base = urlparse(os.environ.get("FLOTILLA_DATABASE_URL") or default_url())
    admin_url = urlunparse(base._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunparse(base._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
