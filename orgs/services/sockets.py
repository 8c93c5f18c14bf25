"""Closing the live-event sockets of people who may no longer see an org's events.

A socket's membership is checked when it connects (observability.consumers). When a member is
removed, their account deactivated or the org suspended or deleted, the service that does it
calls one of these inside its transaction: after commit, a close message reaches every socket
concerned through the channel layer (`<schema>.sockets` for the whole org,
`<schema>.sockets.user.<id>` for one person). The consumer also re-checks membership every
FLOTILLA_WS_RECHECK_SECONDS before forwarding an event, in case a close message is lost or an
access was removed without a service (a cascade).

A role change never closes a socket: every role, viewer included, may see the org's events.
"""

from __future__ import annotations

from collections.abc import Iterable

from config.events import publish
from orgs.models import Organization

# Messages on these topics are instructions to the consumer, never forwarded to a browser.
ORG_SOCKETS_TOPIC = "sockets"
CLOSE_SOCKETS = "sockets.close"


def member_sockets_topic(user_id: int) -> str:
    """The topic every socket of one person in one org listens on."""
    return f"{ORG_SOCKETS_TOPIC}.user.{int(user_id)}"


def close_member_sockets(org: Organization, user_id: int, *, reason: str) -> None:
    """After commit, close the person's open sockets of the org."""
    publish(org.schema_name, member_sockets_topic(user_id), {"kind": CLOSE_SOCKETS, "reason": reason})


def close_user_sockets(orgs: Iterable[Organization], user_id: int, *, reason: str) -> None:
    """After commit, close the person's open sockets of each of these orgs."""
    for org in orgs:
        close_member_sockets(org, user_id, reason=reason)


def close_org_sockets(org: Organization, *, reason: str) -> None:
    """After commit, close every open socket of the org."""
    publish(org.schema_name, ORG_SOCKETS_TOPIC, {"kind": CLOSE_SOCKETS, "reason": reason})
