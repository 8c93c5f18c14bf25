"""Websocket consumers. Permission is checked before any group is joined.

The tenant middleware does not run for websockets: each consumer resolves the org from
the URL and the session user itself, with every database call pinned to a schema.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django_tenants.utils import get_public_schema_name, schema_context

from config.events import group_name
from orgs.exceptions import FlotillaError
from orgs.selectors import get_membership_for_user

# Close codes in the private range: 4401 not signed in, 4404 no such org (or not a member).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


@database_sync_to_async
def _schema_for_member(user: Any, slug: str) -> str | None:
    with schema_context(get_public_schema_name()):
        try:
            return get_membership_for_user(user, slug).org.schema_name
        except FlotillaError:
            return None


class OrgEventsConsumer(AsyncJsonWebsocketConsumer):
    """Streams the live events of one org (`<schema>.org`) to its members' browser pages."""

    joined: list[str]

    async def connect(self) -> None:
        self.joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        schema = await _schema_for_member(user, self.scope["url_route"]["kwargs"]["org_slug"])
        if schema is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        group = group_name(schema, "org")
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.append(group)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The stream is one-way; a ping gets a pong so clients can check liveness.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def org_event(self, event: dict[str, Any]) -> None:
        """A message sent to a joined group by config.events."""
        await self.send_json({"topic": event["topic"], "payload": event["payload"]})
