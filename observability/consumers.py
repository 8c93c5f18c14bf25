"""Websocket consumers. Permission is checked before any group is joined, and again later.

The tenant middleware does not run for websockets: each consumer resolves the org from
the URL and the session user itself, with every database call pinned to a schema.

Access can end while a socket is open (the member is removed, the account deactivated, the org
suspended): the services then send a close message (orgs.services.sockets), and as a safety net
the consumer re-checks the membership before forwarding an event, at most once every
FLOTILLA_WS_RECHECK_SECONDS per socket.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django_tenants.utils import get_public_schema_name, schema_context

from config.events import group_name
from orgs.exceptions import FlotillaError
from orgs.models import Membership
from orgs.selectors import get_membership_for_user
from orgs.services.sockets import CLOSE_SOCKETS, ORG_SOCKETS_TOPIC, member_sockets_topic

# Close codes in the private range: 4401 not signed in, 4404 no such org (or not a member),
# 4403 the access ended while the socket was open.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_ACCESS_ENDED = 4403
EVENTS_TOPIC = "org"


@dataclass(frozen=True)
class _Access:
    schema: str
    org_id: int
    user_id: int


@database_sync_to_async
def _access_for_member(user: Any, slug: str) -> _Access | None:
    with schema_context(get_public_schema_name()):
        try:
            membership = get_membership_for_user(user, slug)
        except FlotillaError:
            return None
        return _Access(membership.org.schema_name, membership.org_id, membership.user_id)


@database_sync_to_async
def _still_allowed(access: _Access) -> bool:
    # One indexed query: still a member, the account active, the org not suspended.
    with schema_context(get_public_schema_name()):
        return Membership.objects.filter(
            org_id=access.org_id,
            user_id=access.user_id,
            user__is_active=True,
            org__suspended_at__isnull=True,
        ).exists()


class OrgEventsConsumer(AsyncJsonWebsocketConsumer):
    """Streams the live events of one org (`<schema>.org`) to its members' browser pages."""

    joined: list[str]
    access: _Access | None
    checked_at: float
    ended: bool

    async def connect(self) -> None:
        self.joined, self.access, self.ended = [], None, False
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        access = await _access_for_member(user, self.scope["url_route"]["kwargs"]["org_slug"])
        if access is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.access = access
        for topic in (EVENTS_TOPIC, ORG_SOCKETS_TOPIC, member_sockets_topic(access.user_id)):
            group = group_name(access.schema, topic)
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        self.checked_at = time.monotonic()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self._leave_groups()

    async def _leave_groups(self) -> None:
        joined, self.joined = self.joined, []
        for group in joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _end(self) -> None:
        """The access is over: close, and forward nothing that is still on its way."""
        if self.ended:
            return
        self.ended = True
        await self.close(code=CLOSE_ACCESS_ENDED)
        await self._leave_groups()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The stream is one-way; a ping gets a pong so clients can check liveness.
        if self.ended:
            return
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def org_event(self, event: dict[str, Any]) -> None:
        """A message sent to a joined group by config.events."""
        if self.ended or self.access is None:
            return
        if event["topic"] != EVENTS_TOPIC:
            # The sockets topics carry instructions (orgs.services.sockets), never events.
            if event["payload"].get("kind") == CLOSE_SOCKETS:
                await self._end()
            return
        if time.monotonic() - self.checked_at >= settings.FLOTILLA_WS_RECHECK_SECONDS:
            if not await _still_allowed(self.access):
                await self._end()
                return
            self.checked_at = time.monotonic()
        await self.send_json({"topic": event["topic"], "payload": event["payload"]})
