"""Fixtures that run the real processes: the ASGI web server (uvicorn, as scripts/run.sh runs it)
and the django-q2 worker.

They talk to the test database, so tests that use them need committed data
(`transactional_db`); `drop_org_schemas` then removes the org schemas those tests created.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.db import connection

from orgs.tenancy import use_public_schema

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_url() -> str:
    """The URL of the database the test run uses (pytest-django's test_ database)."""
    s = connection.settings_dict
    credentials = f"{quote(s['USER'])}:{quote(s['PASSWORD'])}"
    return f"postgres://{credentials}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    """Environment for a child process of the test run."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        FLOTILLA_DATABASE_URL=test_database_url(),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class LiveProcess:
    """A child process whose output goes to a log file shown when a test fails."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._fh = log.open("wb")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._fh, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._fh.close()


def start_web(log: Path, env: dict[str, str], *, processes: int = 1) -> tuple[LiveProcess, str]:
    """The ASGI app served as scripts/run.sh serves it (uvicorn) on a free loopback port."""
    port = _free_port()
    server = LiveProcess(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(processes),
            "--lifespan",
            "off",
        ],
        log,
        env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/login/", timeout=2)
            break
        except httpx.HTTPError:
            if server.proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                pytest.fail("the web server did not start:\n" + server.output())
            time.sleep(0.2)
    return server, base


@pytest.fixture
def live_flotilla(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """The ASGI app served on a free loopback port; yields its base URL."""
    server, base = start_web(tmp_path / "web.log", process_env())
    yield base
    server.stop()
    # Captured by pytest and shown only when the test failed.
    print("--- web server log ---\n" + server.output())


@pytest.fixture
def live_worker(transactional_db: None, tmp_path: Path) -> Iterator[LiveProcess]:
    """A django-q2 worker cluster (`manage.py worker`) on the test database."""
    worker = LiveProcess([sys.executable, "manage.py", "worker"], tmp_path / "worker.log", process_env())
    yield worker
    worker.stop()
    print("--- worker log ---\n" + worker.output())


@pytest.fixture
def drop_org_schemas(transactional_db: None) -> Iterator[None]:
    """Drop org schemas created by a transactional test (flush only empties public tables)."""
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'org\\_%'")
        for (schema,) in cursor.fetchall():
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')
    use_public_schema()
