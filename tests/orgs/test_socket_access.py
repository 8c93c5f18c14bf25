"""An open websocket stops the moment its access ends: a real web server, real sockets.

Removing a member, deactivating the account or suspending the org closes the sockets
concerned (close code 4403) through the PostgreSQL channel layer, before any further event;
and a membership that disappears without a service (a cascade) is caught by the consumer's
re-check before the next event is forwarded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from orgs.choices import Role
from tests.factories import add_member, make_org, make_token, make_user, owner_of
from tests.live import ROOT, process_env, start_web
from tests.orgs.test_live_events import publish_from_another_process, session_cookie

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]
ACCESS_ENDED = 4403


async def connect(base: str, slug: str, cookie: str) -> Any:
    url = base.replace("http://", "ws://") + f"/ws/o/{slug}/events/"
    ws = await websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": base}, open_timeout=10)
    # A pong proves the consumer has joined its groups before the test acts.
    await ws.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
    return ws


async def next_frame(ws: Any, timeout: float) -> tuple[str, Any]:
    """("event", message), ("closed", close code) or ("nothing", None) within the timeout."""
    try:
        return "event", json.loads(await asyncio.wait_for(ws.recv(), timeout))
    except ConnectionClosed as closed:
        return "closed", closed.rcvd.code if closed.rcvd is not None else None
    except TimeoutError:
        return "nothing", None


def in_another_process(code: str) -> None:
    """Run service code in a separate process, as the admin or a worker would."""
    script = "import django; django.setup()\n" + code
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=process_env(), check=True, timeout=60)


class Team:
    """An org with its owner Alice and a member Bob, each with a signed-in session."""

    def __init__(self, slug: str) -> None:
        self.alice, self.bob = make_user(f"alice@{slug}.test"), make_user(f"bob@{slug}.test")
        self.org = make_org(slug, owner=self.alice)
        self.slug = slug
        self.bob_membership = add_member(self.org, Role.MEMBER, user=self.bob)
        self.alice_cookie, self.bob_cookie = session_cookie(self.alice), session_cookie(self.bob)


def test_a_removed_member_is_disconnected_before_any_further_event(live_flotilla: str) -> None:
    team = Team("sock-a")
    _, owner_token = make_token(owner_of(team.org))

    def remove_bob() -> None:
        response = httpx.delete(
            f"{live_flotilla}/api/v1/orgs/members/{team.bob_membership.pk}/",
            headers={"Authorization": f"Bearer {owner_token}"},
            timeout=30,
        )
        assert response.status_code == 204, response.text

    async def scenario() -> dict[str, Any]:
        alice = await connect(live_flotilla, team.slug, team.alice_cookie)
        bob = await connect(live_flotilla, team.slug, team.bob_cookie)
        await asyncio.to_thread(remove_bob)
        seen = {"bob": await next_frame(bob, 15), "alice": await next_frame(alice, 15)}
        await asyncio.to_thread(publish_from_another_process, team.org.schema_name, {"kind": "later"})
        # The PostgreSQL channel layer has been seen, under a loaded machine, to hand Alice the
        # members.changed event a second time (harmless: a page refreshes twice); skip repeats.
        later = await next_frame(alice, 15)
        while later == seen["alice"]:
            later = await next_frame(alice, 15)
        seen["alice_later"] = later
        seen["bob_later"] = await next_frame(bob, 1)
        await alice.close()
        return seen

    seen = asyncio.run(scenario())
    # Bob's first frame after his removal is the close: not even the members.changed event.
    assert seen["bob"] == ("closed", ACCESS_ENDED)
    assert seen["bob_later"][0] == "closed"
    assert seen["alice"] == ("event", {"topic": "org", "payload": {"kind": "members.changed"}})
    assert seen["alice_later"] == ("event", {"topic": "org", "payload": {"kind": "later"}})

    with pytest.raises(InvalidStatus):
        asyncio.run(connect(live_flotilla, team.slug, team.bob_cookie))


def test_suspending_the_org_closes_every_socket(live_flotilla: str) -> None:
    team = Team("sock-b")
    staff = make_user("staff@sock-b.test", is_staff=True)
    suspend = (
        "from orgs.actors import Actor\n"
        "from orgs.models import Organization, User\n"
        "from orgs.services.organizations import set_org_suspended\n"
        f"org = Organization.objects.get(pk={team.org.pk})\n"
        f"set_org_suspended(Actor.staff(User.objects.get(pk={staff.pk}), org), org, suspended=True)\n"
    )

    async def scenario() -> list[tuple[str, Any]]:
        sockets = [await connect(live_flotilla, team.slug, c) for c in (team.alice_cookie, team.bob_cookie)]
        await asyncio.to_thread(in_another_process, suspend)
        closes = [await next_frame(ws, 15) for ws in sockets]
        await asyncio.to_thread(publish_from_another_process, team.org.schema_name, {"kind": "later"})
        return closes + [await next_frame(ws, 1) for ws in sockets]

    frames = asyncio.run(scenario())
    assert frames[:2] == [("closed", ACCESS_ENDED), ("closed", ACCESS_ENDED)]
    assert all(kind == "closed" for kind, _ in frames[2:])
    with pytest.raises(InvalidStatus):
        asyncio.run(connect(live_flotilla, team.slug, team.alice_cookie))


def test_deactivating_an_account_closes_its_sockets_in_every_org(live_flotilla: str) -> None:
    team = Team("sock-c")
    other = make_org("sock-d")
    add_member(other, Role.VIEWER, user=team.bob)
    staff = make_user("staff@sock-c.test", is_staff=True)
    deactivate = (
        "from orgs.actors import Actor\n"
        "from orgs.models import User\n"
        "from orgs.services.users import set_user_active\n"
        f"staff = User.objects.get(pk={staff.pk})\n"
        f"set_user_active(Actor.staff(staff, None), User.objects.get(pk={team.bob.pk}), active=False)\n"
    )

    async def scenario() -> list[tuple[str, Any]]:
        alice = await connect(live_flotilla, team.slug, team.alice_cookie)
        bob_here = await connect(live_flotilla, team.slug, team.bob_cookie)
        bob_there = await connect(live_flotilla, "sock-d", team.bob_cookie)
        await asyncio.to_thread(in_another_process, deactivate)
        frames = [await next_frame(bob_here, 15), await next_frame(bob_there, 15)]
        await asyncio.to_thread(publish_from_another_process, team.org.schema_name, {"kind": "later"})
        frames.append(await next_frame(alice, 15))
        await alice.close()
        return frames

    frames = asyncio.run(scenario())
    assert frames[:2] == [("closed", ACCESS_ENDED), ("closed", ACCESS_ENDED)]
    assert frames[2] == ("event", {"topic": "org", "payload": {"kind": "later"}})


@pytest.fixture
def flotilla_rechecking_every_event(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """A web server whose sockets re-check their membership before every event they forward."""
    server, base = start_web(tmp_path / "web.log", process_env(FLOTILLA_WS_RECHECK_SECONDS="0"))
    yield base
    server.stop()
    print("--- web server log ---\n" + server.output())


def test_a_membership_gone_without_a_service_is_caught_before_the_next_event(
    flotilla_rechecking_every_event: str,
) -> None:
    base = flotilla_rechecking_every_event
    team = Team("sock-e")
    membership = team.bob_membership.pk
    gone = f"from orgs.models import Membership\nMembership.objects.filter(pk={membership}).delete()\n"

    async def scenario() -> dict[str, Any]:
        alice = await connect(base, team.slug, team.alice_cookie)
        bob = await connect(base, team.slug, team.bob_cookie)
        # As when staff delete the account in the admin: the membership row goes by cascade, and
        # no close message is sent.
        await asyncio.to_thread(in_another_process, gone)
        await asyncio.to_thread(publish_from_another_process, team.org.schema_name, {"kind": "secret"})
        seen = {"bob": await next_frame(bob, 15), "alice": await next_frame(alice, 15)}
        await alice.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen["bob"] == ("closed", ACCESS_ENDED)
    assert seen["alice"] == ("event", {"topic": "org", "payload": {"kind": "secret"}})
