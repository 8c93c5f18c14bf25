"""Revoking a token while it mints a child, on two real PostgreSQL connections at once.

Whichever transaction takes the parent's row first, no live child outlives the parent: either
the mint waits and is refused, or the revocation waits and then finds (and revokes) the child.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from orgs.actors import Actor
from orgs.choices import ActorSource
from orgs.exceptions import PermissionDenied
from orgs.models import ApiToken, Membership
from orgs.services.tokens import authenticate_api_token, create_api_token, revoke_api_token
from tests.factories import actor_for, make_org, make_token, owner_of

pytestmark = pytest.mark.usefixtures("drop_org_schemas")


def token_actor(owner: Membership, clear: str) -> Actor:
    """The actor of an API request authenticated by this token."""
    identity = authenticate_api_token(clear, ip=None)
    assert identity is not None
    return Actor(
        org=owner.org, user=owner.user, role=identity.role, source=ActorSource.API, token=identity.token
    )


class Held(threading.Thread):
    """Runs `work` in a transaction on its own connection and holds it open until released."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: Exception | None = None
        self.done_work, self.release = threading.Event(), threading.Event()

    def run(self) -> None:
        try:
            with transaction.atomic():
                try:
                    self.result = self.work()
                finally:
                    self.done_work.set()
                self.release.wait(60)
        except Exception as exc:
            self.error = exc
        finally:
            connection.close()


class Blocked(threading.Thread):
    """Runs `work` on its own connection (it is expected to wait on a row lock)."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except Exception as exc:
            self.error = exc
        finally:
            connection.close()


def wait_for_a_lock_wait() -> None:
    """Until another backend of this database waits on a lock (polled, not slept through)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            row = cursor.fetchone()
        if row is not None and row[0] > 0:
            return
        time.sleep(0.02)
    raise AssertionError("no transaction ever waited on the parent's row")


def test_a_mint_waiting_on_a_revocation_is_refused(transactional_db: None) -> None:
    owner = owner_of(make_org("race-a"))
    parent, clear = make_token(owner)
    actor = token_actor(owner, clear)  # authenticated before the revocation

    revoking = Held(lambda: revoke_api_token(actor_for(owner), ApiToken.objects.get(pk=parent.pk)))
    revoking.start()
    assert revoking.done_work.wait(30)
    minting = Blocked(lambda: create_api_token(actor, name="late", role="member"))
    minting.start()
    wait_for_a_lock_wait()
    revoking.release.set()
    revoking.join(30)
    minting.join(30)

    assert revoking.error is None
    assert isinstance(minting.error, PermissionDenied)
    assert not ApiToken.objects.filter(parent_id=parent.pk).exists()


def test_a_revocation_waiting_on_a_mint_revokes_the_new_child(transactional_db: None) -> None:
    owner = owner_of(make_org("race-b"))
    parent, clear = make_token(owner)
    actor = token_actor(owner, clear)

    minting = Held(lambda: create_api_token(actor, name="child", role="member"))
    minting.start()
    assert minting.done_work.wait(30)
    revoking = Blocked(lambda: revoke_api_token(actor_for(owner), ApiToken.objects.get(pk=parent.pk)))
    revoking.start()
    wait_for_a_lock_wait()
    minting.release.set()
    minting.join(30)
    revoking.join(30)

    assert minting.error is None and revoking.error is None
    child = ApiToken.objects.get(parent_id=parent.pk)
    assert child.revoked_at is not None
    assert authenticate_api_token(minting.result[1], ip=None) is None
