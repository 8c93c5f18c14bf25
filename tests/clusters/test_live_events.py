"""Cluster events over the websocket: a cluster created in org A reaches A's open pages as
`cluster.changed`, and nothing reaches org B's."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.factories import make_org, make_token, make_user, owner_of
from tests.orgs.test_live_events import _connect, _receive, session_cookie

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]


def test_cluster_events_reach_only_their_org(live_flotilla: str) -> None:
    alice, bob = make_user("alice@a.test"), make_user("bob@b.test")
    org_a = make_org("events-a", owner=alice)
    make_org("events-b", owner=bob)
    _, token = make_token(owner_of(org_a))
    cookie_a, cookie_b = session_cookie(alice), session_cookie(bob)

    def create_cluster() -> None:
        response = httpx.post(
            f"{live_flotilla}/api/v1/clusters/",
            headers={"Authorization": f"Bearer {token}"},
            json={"name": "watched", "pools": [{"name": "p", "size": "small", "count": 1}]},
            timeout=30,
        )
        assert response.status_code == 202, response.text

    async def scenario() -> tuple[Any, Any]:
        ws_a = await _connect(live_flotilla, "events-a", cookie_a)
        ws_b = await _connect(live_flotilla, "events-b", cookie_b)
        await asyncio.to_thread(create_cluster)
        got_a = await _receive(ws_a, 15)
        got_b = await _receive(ws_b, 3)
        await ws_a.close()
        await ws_b.close()
        return got_a, got_b

    got_a, got_b = asyncio.run(scenario())
    assert got_a is not None and got_a["topic"] == "org"
    payload = got_a["payload"]
    assert (payload["kind"], payload["name"], payload["status"]) == ("cluster.changed", "watched", "pending")
    assert got_b is None


def test_app_events_reach_only_their_org(live_flotilla: str) -> None:
    from django_tenants.utils import schema_context

    from clusters.models import Cluster, ProviderAccount

    alice, bob = make_user("alice@apps-a.test"), make_user("bob@apps-b.test")
    org_a = make_org("app-events-a", owner=alice)
    make_org("app-events-b", owner=bob)
    _, token = make_token(owner_of(org_a))
    cookie_a, cookie_b = session_cookie(alice), session_cookie(bob)
    with schema_context(org_a.schema_name):
        account = ProviderAccount.objects.create(name="local", kind="local")
        cluster = Cluster.objects.create(
            name="c", provider=account, version="1.36.1", external_name="c-apps", status="ready"
        )

    def deploy() -> None:
        response = httpx.post(
            f"{live_flotilla}/api/v1/clusters/apps/",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "cluster": cluster.pk,
                "name": "watched",
                "image": "nginx:1.27",
                "secrets": {"K": "ws-secret"},
            },
            timeout=30,
        )
        assert response.status_code == 202, response.text

    async def scenario() -> tuple[Any, Any]:
        ws_a = await _connect(live_flotilla, "app-events-a", cookie_a)
        ws_b = await _connect(live_flotilla, "app-events-b", cookie_b)
        await asyncio.to_thread(deploy)
        got_a = await _receive(ws_a, 15)
        got_b = await _receive(ws_b, 3)
        await ws_a.close()
        await ws_b.close()
        return got_a, got_b

    got_a, got_b = asyncio.run(scenario())
    assert got_a is not None and got_a["topic"] == "org"
    payload = got_a["payload"]
    assert (payload["kind"], payload["name"], payload["status"]) == ("app.changed", "watched", "deploying")
    assert "ws-secret" not in str(got_a)
    assert got_b is None
