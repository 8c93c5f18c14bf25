"""Cancelling or retrying an operation needs the permission of the operation's kind.

A member may scale a cluster but not delete it, so a member may cancel and retry a scale, but
neither cancel an admin's deletion (and so stop it) nor retry one (and so delete the cluster).
Through the API with real tokens of every role, against real PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from clusters.models import Operation
from orgs.audit.models import AuditEntry
from orgs.choices import Role
from orgs.models import Organization, User
from tests.api_checks import assert_error
from tests.conftest import api_client_for
from tests.factories import add_member

pytestmark = pytest.mark.django_db
BASE = "/api/v1/clusters/"


class Team:
    """An admin, a member and a viewer of one org, each with an API client, and their emails."""

    def __init__(self, org: Organization) -> None:
        self.org = org
        memberships = {role: add_member(org, role) for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER)}
        self.email = {role: m.user.email for role, m in memberships.items()}
        self.admin, self.member, self.viewer = (api_client_for(memberships[r]) for r in memberships)

    def create_cluster(self, name: str) -> dict[str, Any]:
        body = {"name": name, "pools": [{"name": "p", "size": "small", "count": 1}]}
        response = self.admin.post(BASE, body, format="json")
        assert response.status_code == 202, response.json()
        return dict(response.json())

    def status(self, operation_id: int) -> str:
        with schema_context(self.org.schema_name):
            return str(Operation.objects.get(pk=operation_id).status)

    def audit_actors(self, operation_id: int) -> list[tuple[str, str]]:
        with schema_context(self.org.schema_name):
            rows = AuditEntry.objects.filter(
                object_type="clusters.operation", object_id=str(operation_id)
            ).order_by("id")
            return [(row.action, row.actor_label) for row in rows]


@pytest.fixture
def team(org_a: Organization) -> Team:
    return Team(org_a)


def test_only_admins_cancel_or_retry_a_deletion(team: Team) -> None:
    created = team.create_cluster("doomed")
    deletion = team.admin.delete(f"{BASE}{created['cluster']['id']}/")
    assert deletion.status_code == 202
    op_id = deletion.json()["id"]
    url = f"{BASE}operations/{op_id}/"

    for client in (team.member, team.viewer):
        assert_error(client.post(url + "cancel/"), 403, "permission_denied")
    assert team.status(op_id) == "queued"

    assert team.admin.post(url + "cancel/").json()["status"] == "cancelled"

    for client in (team.member, team.viewer):
        assert_error(client.post(url + "retry/"), 403, "permission_denied")
    assert team.status(op_id) == "cancelled"

    retried = team.admin.post(url + "retry/")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"

    # Only the admin's cancel and retry are in the audit log: the refusals changed nothing.
    assert team.audit_actors(op_id) == [
        ("operation.cancelled", team.email[Role.ADMIN]),
        ("operation.retried", team.email[Role.ADMIN]),
    ]


def test_members_cancel_and_retry_a_scale_viewers_do_not(team: Team) -> None:
    created = team.create_cluster("scaled")
    cluster_id, pool_id = created["cluster"]["id"], created["cluster"]["pools"][0]["id"]
    # Clear the create operation out of the way, so that a scale may start.
    team.admin.post(f"{BASE}operations/{created['operation']['id']}/cancel/")
    scaled = team.member.patch(f"{BASE}{cluster_id}/pools/{pool_id}/", {"count": 2}, format="json")
    assert scaled.status_code == 202 and scaled.json()["kind"] == "scale"
    op_id = scaled.json()["id"]
    url = f"{BASE}operations/{op_id}/"

    assert_error(team.viewer.post(url + "cancel/"), 403, "permission_denied")
    assert team.status(op_id) == "queued"
    assert team.member.post(url + "cancel/").json()["status"] == "cancelled"

    assert_error(team.viewer.post(url + "retry/"), 403, "permission_denied")
    assert team.status(op_id) == "cancelled"
    assert team.member.post(url + "retry/").status_code == 202

    assert team.audit_actors(op_id) == [
        ("operation.cancelled", team.email[Role.MEMBER]),
        ("operation.retried", team.email[Role.MEMBER]),
    ]


def test_a_members_token_of_an_admin_acts_as_a_member(team: Team, org_a: Organization) -> None:
    """An admin's token created with the member role is held to the member's permissions."""
    admin = add_member(org_a, Role.ADMIN)
    as_member = api_client_for(admin, role=Role.MEMBER)
    created = team.create_cluster("held")
    op_id = team.admin.delete(f"{BASE}{created['cluster']['id']}/").json()["id"]
    assert_error(as_member.post(f"{BASE}operations/{op_id}/cancel/"), 403, "permission_denied")
    assert team.status(op_id) == "queued"


def test_the_portal_refuses_a_member_cancelling_a_deletion(team: Team, org_a: Organization) -> None:
    created = team.create_cluster("portal-doomed")
    op_id = team.admin.delete(f"{BASE}{created['cluster']['id']}/").json()["id"]
    member = add_member(org_a, Role.MEMBER)
    browser = Client()
    browser.force_login(member.user)
    response = browser.post(f"/o/{org_a.slug}/clusters/operations/{op_id}/cancel/", follow=True)
    assert "This needs the admin role or higher (cluster.delete)." in response.content.decode()
    assert team.status(op_id) == "queued"
    assert team.audit_actors(op_id) == []


def _page(team: Team, role: Role, cluster_id: int, path: str = "") -> str:
    client = Client()
    client.force_login(User.objects.get(email=team.email[role]))
    response = client.get(f"/o/{team.org.slug}/clusters/{cluster_id}/{path}")
    assert response.status_code == 200
    return response.content.decode()


def test_the_cluster_page_offers_cancel_and_retry_only_to_who_may(team: Team) -> None:
    created = team.create_cluster("offered")
    cluster_id = created["cluster"]["id"]
    op_id = team.admin.delete(f"{BASE}{cluster_id}/").json()["id"]
    cancel, retry = (f"/operations/{op_id}/cancel/", f"/operations/{op_id}/retry/")

    # A member may update the cluster, but not delete it: no Cancel on the deletion, on the
    # page or in the fragment the live updates swap in.
    for path in ("", "live/"):
        assert cancel not in _page(team, Role.MEMBER, cluster_id, path)
        assert cancel in _page(team, Role.ADMIN, cluster_id, path)

    team.admin.post(f"{BASE}operations/{op_id}/cancel/")
    for path in ("", "live/"):
        assert retry not in _page(team, Role.MEMBER, cluster_id, path)
        assert retry in _page(team, Role.ADMIN, cluster_id, path)
