"""A token that creates a token (through the API) is its parent: the child never outlives it.

The child's role is at most the parent's, it expires no later than the parent (with it, when
no expiry is asked for), and it is revoked with it, so it stops authenticating the moment the
parent does. Tokens made in the portal (a session, not a token) are unchanged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from orgs.actors import Actor
from orgs.audit.models import AuditEntry
from orgs.choices import ActorSource, Role
from orgs.exceptions import PermissionDenied
from orgs.models import ApiToken, Organization
from orgs.services.tokens import authenticate_api_token, create_api_token, revoke_api_token
from tests.api_checks import assert_error
from tests.factories import actor_for, make_token, owner_of

pytestmark = pytest.mark.django_db
TOKENS = "/api/v1/orgs/tokens/"
CURRENT = "/api/v1/orgs/current/"


def bearer(clear: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {clear}")
    return client


def mint(client: APIClient, **body: object) -> dict[str, Any]:
    response = client.post(TOKENS, {"name": "child", "role": "member", **body}, format="json")
    assert response.status_code == 201, response.json()
    return dict(response.json())


def parse(value: object) -> datetime:
    assert isinstance(value, str), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_child_asking_for_no_expiry_expires_with_its_parent(org_a: Organization) -> None:
    five_minutes = timezone.now() + timedelta(minutes=5)
    parent, clear = make_token(owner_of(org_a), expires_at=five_minutes)
    child = mint(bearer(clear))
    assert parse(child["expires_at"]) == parent.expires_at
    stored = ApiToken.objects.get(pk=child["id"])
    assert stored.expires_at == parent.expires_at and stored.parent_id == parent.pk
    assert child["parent"] == parent.pk

    # Revoking the parent revokes the child: it is refused from the next request on.
    child_client = bearer(str(child["token"]))
    assert child_client.get(CURRENT).status_code == 200
    assert bearer(clear).delete(f"{TOKENS}{parent.pk}/").status_code == 204
    assert_error(child_client.get(CURRENT), 401, "authentication_failed")
    assert ApiToken.objects.get(pk=child["id"]).revoked_at is not None


def test_a_child_cannot_ask_to_outlive_its_parent(org_a: Organization) -> None:
    parent, clear = make_token(owner_of(org_a), expires_at=timezone.now() + timedelta(minutes=5))
    later = (timezone.now() + timedelta(days=30)).isoformat()
    response = bearer(clear).post(TOKENS, {"name": "c", "role": "member", "expires_at": later}, format="json")
    assert_error(response, 400, "invalid", field="expires_at")
    assert not ApiToken.objects.filter(parent=parent).exists()
    # An earlier expiry is the caller's to choose.
    sooner = timezone.now() + timedelta(minutes=1)
    assert parse(mint(bearer(clear), expires_at=sooner.isoformat())["expires_at"]) == sooner


def test_a_childs_role_is_at_most_its_parents(org_a: Organization) -> None:
    _, viewer_clear = make_token(owner_of(org_a), role=Role.VIEWER)
    response = bearer(viewer_clear).post(TOKENS, {"name": "c", "role": "admin"}, format="json")
    assert_error(response, 400, "invalid", field="role")


def test_revocation_reaches_every_descendant_and_is_audited(org_a: Organization) -> None:
    owner = owner_of(org_a)
    parent, clear = make_token(owner)  # no expiry: the children may have none either
    child = mint(bearer(clear))
    assert child["expires_at"] is None
    grandchild = mint(bearer(str(child["token"])), name="grandchild")
    # The owner revokes the root in the portal (a session, not a token).
    revoke_api_token(actor_for(owner), parent)
    for clear_value in (child["token"], grandchild["token"]):
        assert_error(bearer(str(clear_value)).get(CURRENT), 401)
    with schema_context(org_a.schema_name):
        entry = AuditEntry.objects.get(action="token.revoked", object_id=str(parent.pk))
    prefixes = set(
        ApiToken.objects.filter(pk__in=[child["id"], grandchild["id"]]).values_list("prefix", flat=True)
    )
    assert entry.after is not None and set(entry.after["descendants_revoked"]) == prefixes


def test_revoking_a_child_leaves_the_parent(org_a: Organization) -> None:
    _, clear = make_token(owner_of(org_a))
    child = mint(bearer(clear))
    assert bearer(clear).delete(f"{TOKENS}{child['id']}/").status_code == 204
    assert bearer(clear).get(CURRENT).status_code == 200


def test_portal_tokens_have_no_parent_and_keep_their_expiry(org_a: Organization) -> None:
    token, _ = make_token(owner_of(org_a))
    assert token.parent_id is None and token.expires_at is None


def test_a_revoked_parent_cannot_mint(org_a: Organization) -> None:
    """The parent's row is re-read under lock: a request that authenticated just before the
    parent was revoked cannot create a child after it."""
    owner = owner_of(org_a)
    parent, clear = make_token(owner)
    identity = authenticate_api_token(clear, ip=None)
    assert identity is not None
    actor = Actor(
        org=org_a, user=owner.user, role=identity.role, source=ActorSource.API, token=identity.token
    )
    revoke_api_token(actor_for(owner), parent)
    with pytest.raises(PermissionDenied):
        create_api_token(actor, name="late", role="member")
    assert not ApiToken.objects.filter(parent=parent).exists()
