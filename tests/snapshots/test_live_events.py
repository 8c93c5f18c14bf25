"""Snapshot and restore events over the websocket: they reach the org's open pages, and nothing
reaches another org's."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.factories import make_org, make_token, make_user, owner_of
from tests.orgs.test_live_events import _connect, _receive, session_cookie

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]


def test_snapshot_events_reach_only_their_org(live_flotilla: str) -> None:
    from django_tenants.utils import schema_context

    from clusters.models import Cluster, ProviderAccount

    alice, bob = make_user("alice@snap-a.test"), make_user("bob@snap-b.test")
    org_a = make_org("snap-events-a", owner=alice)
    make_org("snap-events-b", owner=bob)
    _, token = make_token(owner_of(org_a))
    cookie_a, cookie_b = session_cookie(alice), session_cookie(bob)
    with schema_context(org_a.schema_name):
        account = ProviderAccount.objects.create(name="local", kind="local")
        cluster = Cluster.objects.create(
            name="c", provider=account, version="1.36.1", external_name="c-snaps", status="ready"
        )

    def snapshot() -> None:
        response = httpx.post(
            f"{live_flotilla}/api/v1/snapshots/",
            headers={"Authorization": f"Bearer {token}"},
            json={"cluster": cluster.pk, "name": "watched"},
            timeout=30,
        )
        assert response.status_code == 202, response.text

    async def scenario() -> tuple[Any, Any]:
        ws_a = await _connect(live_flotilla, "snap-events-a", cookie_a)
        ws_b = await _connect(live_flotilla, "snap-events-b", cookie_b)
        await asyncio.to_thread(snapshot)
        got_a = await _receive(ws_a, 15)
        got_b = await _receive(ws_b, 3)
        await ws_a.close()
        await ws_b.close()
        return got_a, got_b

    got_a, got_b = asyncio.run(scenario())
    assert got_a is not None and got_a["topic"] == "org"
    payload = got_a["payload"]
    assert (payload["kind"], payload["name"], payload["status"]) == ("snapshot.changed", "watched", "pending")
    assert got_b is None
