"""The staff admin: organisation tools go through the services and are audited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from orgs import navigation
from orgs.audit.models import AuditEntry
from orgs.models import ApiToken, Organization
from orgs.navigation import AdminLink
from tests.factories import make_token, make_user, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(make_user("staff@flotilla.test", is_staff=True, is_superuser=True))
    return client


def test_members_of_orgs_cannot_open_the_admin(org_a: Organization) -> None:
    client = Client()
    client.force_login(owner_of(org_a).user)
    assert client.get("/admin/orgs/organization/").status_code == 302


def test_suspend_and_reactivate_are_audited(staff: Client, org_a: Organization) -> None:
    response = staff.post(
        "/admin/orgs/organization/", {"action": "suspend", "_selected_action": [org_a.pk]}, follow=True
    )
    assert response.status_code == 200
    org_a.refresh_from_db()
    assert org_a.suspended_at is not None
    with schema_context(org_a.schema_name):
        entry = AuditEntry.objects.get(action="org.suspended")
    assert entry.actor_label == "staff@flotilla.test" and entry.source == "admin"
    staff.post("/admin/orgs/organization/", {"action": "reactivate", "_selected_action": [org_a.pk]})
    org_a.refresh_from_db()
    assert org_a.suspended_at is None


def test_quota_change_goes_through_the_service(staff: Client, org_a: Organization) -> None:
    response = staff.post(
        f"/admin/orgs/organization/{org_a.pk}/change/",
        {
            "name": org_a.name,
            "max_clusters": 3,
            "max_nodes": 12,
            "memberships-TOTAL_FORMS": 0,
            "memberships-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    org_a.refresh_from_db()
    assert (org_a.max_clusters, org_a.max_nodes) == (3, 12)
    with schema_context(org_a.schema_name):
        assert AuditEntry.objects.get(action="org.quotas_changed").after == {
            "max_clusters": 3,
            "max_nodes": 12,
        }


def test_staff_revoke_token(staff: Client, org_a: Organization) -> None:
    token, _ = make_token(owner_of(org_a))
    staff.post("/admin/orgs/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    page = staff.get(f"/admin/orgs/apitoken/{token.pk}/change/").content.decode()
    assert token.secret_hash not in page


def test_audit_log_of_any_org(staff: Client, org_a: Organization, org_b: Organization) -> None:
    page_a = staff.get(f"/admin/audit/auditentry/?schema={org_a.schema_name}").content.decode()
    assert "owner@alpha.test" in page_a and "owner@bravo.test" not in page_a
    platform = staff.get("/admin/audit/auditentry/").content.decode()
    assert "org.created" not in platform


def test_staff_creates_org_for_a_user(staff: Client) -> None:
    owner = make_user("founder@x.test")
    response = staff.post(
        "/admin/orgs/organization/add/", {"name": "Gamma", "slug": "gamma", "owner_email": owner.email}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    org = Organization.objects.get(slug="gamma")
    assert org.memberships.get().user == owner


def test_task_queue_is_in_the_admin(staff: Client) -> None:
    for path in ["/admin/django_q/failure/", "/admin/django_q/success/", "/admin/django_q/ormq/"]:
        assert staff.get(path).status_code == 200, path


def test_deactivating_a_user_goes_through_the_service(staff: Client, org_a: Organization) -> None:
    user = owner_of(org_a).user
    _, clear = make_token(owner_of(org_a))
    form = {
        "email": user.email,
        "full_name": "Renamed",
        "is_staff": "",
        "is_superuser": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    response = staff.post(f"/admin/orgs/user/{user.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    user.refresh_from_db()
    assert not user.is_active and user.full_name == "Renamed"
    entry = AuditEntry.objects.get(action="user.deactivated", object_id=str(user.pk))
    assert entry.actor_label == "staff@flotilla.test" and entry.after == {"is_active": False}
    # Its tokens stop at once.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {clear}")
    assert client.get("/api/v1/orgs/current/").status_code == 401


def _change_form(org: Organization, **values: object) -> dict[str, object]:
    return {
        "name": org.name,
        "max_clusters": org.max_clusters,
        "max_nodes": org.max_nodes,
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
        **values,
    }


def _org_entries(org: Organization, action: str) -> list[AuditEntry]:
    with schema_context(org.schema_name):
        return list(AuditEntry.objects.filter(action=action))


def test_quota_change_is_audited_with_the_stored_before(staff: Client, org_a: Organization) -> None:
    before = {"max_clusters": org_a.max_clusters, "max_nodes": org_a.max_nodes}
    assert before != {"max_clusters": 4, "max_nodes": 9}
    response = staff.post(
        f"/admin/orgs/organization/{org_a.pk}/change/", _change_form(org_a, max_clusters=4, max_nodes=9)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    [entry] = _org_entries(org_a, "org.quotas_changed")
    assert entry.before == before
    assert entry.after == {"max_clusters": 4, "max_nodes": 9}
    assert entry.source == "admin"


def test_rename_in_the_admin_is_audited(staff: Client, org_a: Organization) -> None:
    old_name = org_a.name
    response = staff.post(f"/admin/orgs/organization/{org_a.pk}/change/", _change_form(org_a, name="Renamed"))
    assert response.status_code == 302, response.content.decode()[:2000]
    org_a.refresh_from_db()
    assert org_a.name == "Renamed"
    [entry] = _org_entries(org_a, "org.updated")
    assert (entry.before, entry.after) == ({"name": old_name}, {"name": "Renamed"})
    assert entry.actor_label == "staff@flotilla.test" and entry.source == "admin"
    # A rename alone changes no quota.
    assert _org_entries(org_a, "org.quotas_changed") == []


def test_saving_without_a_change_audits_nothing(staff: Client, org_a: Organization) -> None:
    with schema_context(org_a.schema_name):
        count = AuditEntry.objects.count()
    response = staff.post(f"/admin/orgs/organization/{org_a.pk}/change/", _change_form(org_a))
    assert response.status_code == 302, response.content.decode()[:2000]
    with schema_context(org_a.schema_name):
        assert AuditEntry.objects.count() == count


def test_org_list_links_to_the_pages_apps_registered(
    staff: Client, org_a: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = AdminLink("audit", "admin:audit_auditentry_changelist")
    monkeypatch.setattr(navigation, "_admin_links", [*navigation.admin_links(), extra])
    page = staff.get("/admin/orgs/organization/").content.decode()
    schema = org_a.schema_name
    assert f'<a href="/admin/clusters/cluster/?schema={schema}">clusters</a>' in page
    assert f'<a href="/admin/clusters/operation/?schema={schema}">operations</a>' in page
    assert f'<a href="/admin/audit/auditentry/?schema={schema}">audit</a>' in page


def test_orgs_code_names_no_app_built_on_it() -> None:
    # Apps depend one way (orgs ← everyone): they register their actions, sections and admin
    # links; orgs imports none of them and hard-codes none of their admin URLs.
    root = Path(__file__).resolve().parents[2] / "orgs"
    offending = re.compile(
        r"^\s*(from|import) (clusters|networking|snapshots|observability)\b|/admin/clusters/", re.M
    )
    found = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "migrations" not in path.parts and offending.search(path.read_text())
    ]
    assert found == []
