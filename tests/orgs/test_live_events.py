"""Websockets end to end: a real web server, events published from another process.

The channel layer is the PostgreSQL one, so delivery from a separate process proves it
works across processes with nothing but PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
import websockets
from django.contrib.sessions.backends.db import SessionStore
from websockets.exceptions import InvalidStatus

from orgs.models import Organization, User
from tests.factories import make_org, make_user
from tests.live import ROOT, process_env

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]


def session_cookie(user: User) -> str:
    """A signed-in session for the user, as the browser would hold it."""
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.create()
    return f"sessionid={store.session_key}"


def publish_from_another_process(schema: str, payload: dict[str, Any]) -> None:
    code = (
        "import django; django.setup();"
        "from config.events import send_now;"
        f"send_now({schema!r}, 'org', {payload!r})"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=process_env(), check=True, timeout=60)


async def _connect(base: str, slug: str, cookie: str, origin: str | None = None) -> Any:
    url = base.replace("http://", "ws://") + f"/ws/o/{slug}/events/"
    headers = {"Cookie": cookie, "Origin": origin or base}
    return await websockets.connect(url, additional_headers=headers, open_timeout=10)


async def _receive(ws: Any, timeout: float) -> dict[str, Any] | None:
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]
    except TimeoutError:
        return None


def test_event_reaches_only_its_org(live_flotilla: str) -> None:
    alice, bob = make_user("alice@a.test"), make_user("bob@b.test")
    org_a: Organization = make_org("live-a", owner=alice)
    make_org("live-b", owner=bob)

    cookie_a, cookie_b = session_cookie(alice), session_cookie(bob)

    async def scenario() -> tuple[Any, Any]:
        ws_a = await _connect(live_flotilla, "live-a", cookie_a)
        ws_b = await _connect(live_flotilla, "live-b", cookie_b)
        await ws_a.send(json.dumps({"type": "ping"}))
        assert await _receive(ws_a, 10) == {"type": "pong"}
        await asyncio.to_thread(publish_from_another_process, org_a.schema_name, {"kind": "hello", "n": 1})
        got_a = await _receive(ws_a, 15)
        got_b = await _receive(ws_b, 3)
        await ws_a.close()
        await ws_b.close()
        return got_a, got_b

    got_a, got_b = asyncio.run(scenario())
    assert got_a == {"topic": "org", "payload": {"kind": "hello", "n": 1}}
    assert got_b is None


def test_member_of_other_org_is_refused(live_flotilla: str) -> None:
    alice, bob = make_user("alice@a.test"), make_user("bob@b.test")
    make_org("live-a", owner=alice)
    make_org("live-b", owner=bob)

    cookie_b = session_cookie(bob)

    async def scenario() -> None:
        await _connect(live_flotilla, "live-a", cookie_b)

    # The consumer closes before accepting, so the handshake itself is refused.
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(scenario())
    assert refused.value.response.status_code == 403


def test_anonymous_and_foreign_origin_are_refused(live_flotilla: str) -> None:
    alice = make_user("alice@a.test")
    make_org("live-a", owner=alice)

    cookie = session_cookie(alice)

    async def foreign_origin() -> None:
        await _connect(live_flotilla, "live-a", cookie, origin="http://evil.example")

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(foreign_origin())
    assert refused.value.response.status_code == 403

    async def anonymous() -> Any:
        return await _connect(live_flotilla, "live-a", "sessionid=nope")

    with pytest.raises(InvalidStatus) as anonymous_refused:
        asyncio.run(anonymous())
    assert anonymous_refused.value.response.status_code == 403
