"""Live events: services publish after commit; this module alone talks to the channel layer.

Groups are named `<schema>.<topic>` so an event can only ever reach sockets that joined
the group of that org's schema (observability.consumers checks membership before joining).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)
_TOPIC_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,60}$")


def group_name(schema_name: str, topic: str) -> str:
    """The channel-layer group of one topic of one org."""
    if not _TOPIC_RE.match(topic):
        raise ValueError(f"invalid event topic {topic!r}")
    if not schema_name or schema_name == "public":
        raise ValueError("events belong to an organisation's schema")
    return f"{schema_name}.{topic}"


def send_now(schema_name: str, topic: str, payload: dict[str, Any]) -> None:
    """Deliver at once (callers outside a transaction, e.g. progress from a running task)."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "org.event", "topic": topic, "payload": payload}
    try:
        async_to_sync(layer.group_send)(group_name(schema_name, topic), message)
    except Exception:  # a broken channel layer must never break the write that emitted it
        logger.exception("could not forward event %s to %s", topic, schema_name)


def publish(schema_name: str, topic: str, payload: dict[str, Any]) -> None:
    """Queue an event for an org's topic, sent only if and when the transaction commits."""
    group_name(schema_name, topic)  # validate now, fail in the caller
    transaction.on_commit(lambda: send_now(schema_name, topic, payload))
