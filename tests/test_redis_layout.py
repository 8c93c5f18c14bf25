"""The scale-out layout for real: Redis (Debian's redis-server) as the task broker, the channel
layer and the cache, with two web processes and two worker processes.

Each web process is a server of its own (its own port), so a websocket on one and a websocket on
the other prove that the channel layer joins them; events come from yet another process, and
tasks go through the Redis broker to whichever worker takes them, each in its own org's schema.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from django_q.models import Task
from django_tenants.utils import schema_context

from orgs.audit.models import AuditEntry
from orgs.models import Organization
from tests.factories import make_org, make_user
from tests.live import ROOT, LiveProcess, _free_port, process_env, start_web
from tests.orgs.test_live_events import _connect, _receive, session_cookie

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]

TARGET = "tests.orgs.task_targets.record_marker"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of the test's own on a free loopback port, nothing persisted."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: scripts/test.sh installs Debian's redis-server package")
    port = _free_port()
    log = (tmp_path / "redis.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "redis.log").read_text()
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=15)
    log.close()


def _keys(url: str) -> list[bytes]:
    return cast(list[bytes], redis.Redis.from_url(url).keys("*"))


@dataclass
class Layout:
    """Two web servers and two workers on one Redis."""

    redis_url: str
    webs: list[str]
    workers: list[LiveProcess]

    def env(self) -> dict[str, str]:
        return process_env(FLOTILLA_REDIS_URL=self.redis_url)

    def run(self, code: str) -> None:
        """Python in a process of this layout (Django set up with its settings)."""
        subprocess.run(
            [sys.executable, "-c", "import django; django.setup()\n" + code],
            cwd=ROOT,
            env=self.env(),
            check=True,
            timeout=60,
        )


@pytest.fixture
def layout(transactional_db: None, redis_url: str, tmp_path: Path) -> Iterator[Layout]:
    env = process_env(FLOTILLA_REDIS_URL=redis_url)
    started: list[LiveProcess] = []
    try:
        webs = []
        for n in range(2):
            server, base = start_web(tmp_path / f"web{n}.log", env)
            started.append(server)
            webs.append(base)
        workers = []
        for n in range(2):
            worker = LiveProcess([sys.executable, "manage.py", "worker"], tmp_path / f"worker{n}.log", env)
            started.append(worker)
            workers.append(worker)
        yield Layout(redis_url=redis_url, webs=webs, workers=workers)
    finally:
        for process in started:
            process.stop()
            print(f"--- {process.log.name} ---\n" + process.output())


def test_events_cross_web_processes_through_redis_and_stay_in_their_org(layout: Layout) -> None:
    alice, bob = make_user("alice@redis.test"), make_user("bob@redis.test")
    org_a: Organization = make_org("redis-a", owner=alice)
    make_org("redis-b", owner=bob)
    cookie_a, cookie_b = session_cookie(alice), session_cookie(bob)
    web1, web2 = layout.webs

    async def scenario() -> list[Any]:
        sockets = [
            await _connect(web1, "redis-a", cookie_a),
            await _connect(web2, "redis-a", cookie_a),
            await _connect(web2, "redis-b", cookie_b),
        ]
        for ws in sockets:
            await ws.send(json.dumps({"type": "ping"}))
            assert await _receive(ws, 10) == {"type": "pong"}
        # The sockets' groups live in Redis, not in PostgreSQL's channel layer.
        groups = [k for k in _keys(layout.redis_url) if b"group" in k]
        assert any(org_a.schema_name.encode() in k for k in groups), groups
        code = (
            f"from config.events import send_now; send_now({org_a.schema_name!r}, 'org', {{'kind': 'hello'}})"
        )
        await asyncio.to_thread(layout.run, code)
        got = [await _receive(sockets[0], 15), await _receive(sockets[1], 15), await _receive(sockets[2], 3)]
        for ws in sockets:
            await ws.close()
        return got

    on_web1, on_web2, other_org = asyncio.run(scenario())
    assert on_web1 == on_web2 == {"topic": "org", "payload": {"kind": "hello"}}
    assert other_org is None


def test_tasks_go_through_the_redis_broker_once_each_in_their_org(layout: Layout) -> None:
    orgs = [make_org(f"redis-t{n}") for n in range(3)]
    code = "from config.tasks import enqueue\n" + "".join(
        f"enqueue({TARGET!r}, schema_name={org.schema_name!r}, marker='m{n}')\n"
        for n, org in enumerate(orgs * 2)
    )
    # enqueue() sends on commit; a process outside any transaction commits at once.
    layout.run(code)
    deadline = time.monotonic() + 120
    while Task.objects.count() < 6:
        for worker in layout.workers:
            assert worker.proc.poll() is None, worker.output()
        assert time.monotonic() < deadline, "the workers did not finish:\n" + layout.workers[0].output()
        time.sleep(0.3)
    assert all(t.success for t in Task.objects.all()), [t.result for t in Task.objects.all()]
    broker = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django_q.brokers import get_broker; "
         "print(type(get_broker()).__name__)"],
        cwd=ROOT, env=layout.env(), capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert broker.stdout.strip().splitlines()[-1] == "Redis"
    assert {t.result for t in Task.objects.all()} == {org.schema_name for org in orgs}
    for n, org in enumerate(orgs):
        with schema_context(org.schema_name):
            markers = list(
                AuditEntry.objects.filter(action="test.marker").values_list("object_repr", flat=True)
            )
        # Each enqueue ran exactly once, in its own org.
        assert sorted(markers) == [f"m{n}", f"m{n + 3}"]
    with schema_context("public"):
        assert not AuditEntry.objects.filter(action="test.marker").exists()


def test_the_cache_is_shared_by_the_web_processes(layout: Layout) -> None:
    # A value one process caches is read by another: the throttles and sessions' cache holds
    # across web processes (the database cache would too; Redis must not regress it).
    layout.run("from django.core.cache import cache; cache.set('layout-probe', 'from-one-process', 60)")
    assert any(b"layout-probe" in key for key in _keys(layout.redis_url))
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.core.cache import cache; "
         "print(cache.get('layout-probe'))"],
        cwd=ROOT,
        env=layout.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "from-one-process"
