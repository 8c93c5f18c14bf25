"""The orgs API: shapes, roles, bad input and tenant isolation, against real PostgreSQL."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from orgs.audit.models import AuditEntry
from orgs.choices import Role
from orgs.models import ApiToken, Invitation, Membership, Organization
from tests.api_checks import assert_cross_org_isolated, assert_error
from tests.conftest import api_client_for
from tests.factories import add_member, owner_of

pytestmark = pytest.mark.django_db


def test_current_org(client_a: APIClient, org_a: Organization) -> None:
    body = client_a.get("/api/v1/orgs/current/").json()
    assert body["slug"] == "alpha" and body["role"] == "owner"
    assert set(body) == {"slug", "name", "created_at", "max_clusters", "max_nodes", "role"}


def test_no_token_is_401_with_challenge() -> None:
    response = APIClient().get("/api/v1/orgs/current/")
    assert_error(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer flt_deadbeef_nope", "Bearer flt_", "Bearer "])
def test_bad_tokens_are_401(header: str, org_a: Organization) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/orgs/current/").status_code == 401


def test_rename_org_and_audit(client_a: APIClient, org_a: Organization) -> None:
    response = client_a.patch("/api/v1/orgs/current/", {"name": "Alpha Ltd"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Alpha Ltd"
    with schema_context(org_a.schema_name):
        entry = AuditEntry.objects.filter(action="org.updated").get()
    assert entry.before == {"name": "Alpha"} and entry.after == {"name": "Alpha Ltd"}
    assert entry.source == "api" and entry.ip == "127.0.0.1" and entry.token_prefix


def test_cli_user_agent_is_audited_as_cli(org_a: Organization) -> None:
    client = api_client_for(owner_of(org_a))
    client.patch("/api/v1/orgs/current/", {"name": "X"}, format="json", HTTP_USER_AGENT="flotilla-cli/0.1.0")
    with schema_context(org_a.schema_name):
        assert AuditEntry.objects.get(action="org.updated").source == "cli"


class TestBadInput:
    def test_unknown_field_is_named(self, client_a: APIClient) -> None:
        response = client_a.patch("/api/v1/orgs/current/", {"name": "x", "slug": "hijack"}, format="json")
        assert_error(response, 400, "invalid", field="slug")

    def test_malformed_json(self, client_a: APIClient) -> None:
        response = client_a.generic(
            "PATCH", "/api/v1/orgs/current/", "{not json", content_type="application/json"
        )
        assert_error(response, 400, "malformed")

    def test_wrong_type(self, client_a: APIClient) -> None:
        response = client_a.post("/api/v1/orgs/tokens/", {"name": ["a"], "role": 3}, format="json")
        error = assert_error(response, 400, "invalid")
        assert "name" in error["fields"] and "role" in error["fields"]

    def test_missing_field(self, client_a: APIClient) -> None:
        assert_error(
            client_a.post("/api/v1/orgs/tokens/", {"role": "viewer"}, format="json"), 400, field="name"
        )

    def test_oversize_payload(self, client_a: APIClient) -> None:
        big = json.dumps({"name": "x" * (1024 * 1024 + 10)})
        response = client_a.generic("PATCH", "/api/v1/orgs/current/", big, content_type="application/json")
        assert_error(response, 413, "payload_too_large")
        assert Organization.objects.get(slug="alpha").name == "Alpha"

    def test_non_json_content_type(self, client_a: APIClient) -> None:
        response = client_a.generic(
            "PATCH", "/api/v1/orgs/current/", "name=x", content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 415


class TestMembers:
    def test_list_and_get(self, client_a: APIClient, org_a: Organization) -> None:
        viewer = add_member(org_a, Role.VIEWER)
        rows = client_a.get("/api/v1/orgs/members/").json()
        assert rows["count"] == 2
        assert {r["email"] for r in rows["results"]} == {"owner@alpha.test", viewer.user.email}
        detail = client_a.get(f"/api/v1/orgs/members/{viewer.pk}/").json()
        assert detail["role"] == "viewer"

    def test_change_role_and_remove(self, client_a: APIClient, org_a: Organization) -> None:
        m = add_member(org_a, Role.VIEWER)
        assert (
            client_a.patch(f"/api/v1/orgs/members/{m.pk}/", {"role": "admin"}, format="json").json()["role"]
            == "admin"
        )
        assert client_a.delete(f"/api/v1/orgs/members/{m.pk}/").status_code == 204
        assert not Membership.objects.filter(pk=m.pk).exists()

    def test_bad_role_is_named(self, client_a: APIClient, org_a: Organization) -> None:
        m = add_member(org_a, Role.VIEWER)
        assert_error(
            client_a.patch(f"/api/v1/orgs/members/{m.pk}/", {"role": "god"}, format="json"), 400, field="role"
        )

    def test_last_owner_cannot_leave_or_be_demoted(self, client_a: APIClient, org_a: Organization) -> None:
        owner = owner_of(org_a)
        assert_error(
            client_a.patch(f"/api/v1/orgs/members/{owner.pk}/", {"role": "admin"}, format="json"), 409
        )
        assert_error(client_a.delete(f"/api/v1/orgs/members/{owner.pk}/"), 409)

    def test_member_cannot_change_roles(self, org_a: Organization) -> None:
        member = add_member(org_a, Role.MEMBER)
        other = add_member(org_a, Role.VIEWER)
        client = api_client_for(member)
        assert_error(
            client.patch(f"/api/v1/orgs/members/{other.pk}/", {"role": "member"}, format="json"),
            403,
            "permission_denied",
        )

    def test_cross_org(self, client_a: APIClient, client_b: APIClient, org_a: Organization) -> None:
        m = add_member(org_a, Role.VIEWER)
        assert_cross_org_isolated(
            client_b, "/api/v1/orgs/members/", f"/api/v1/orgs/members/{m.pk}/", owner_id=m.pk
        )
        assert Membership.objects.get(pk=m.pk).role == "viewer"


class TestInvitations:
    def test_create_list_revoke(self, client_a: APIClient, org_a: Organization) -> None:
        response = client_a.post(
            "/api/v1/orgs/invitations/", {"email": "New@Example.test", "role": "member"}, format="json"
        )
        assert response.status_code == 201
        body = response.json()
        assert body["email"] == "new@example.test" and "/invite/" in body["url"]
        token = body["url"].rstrip("/").rsplit("/", 1)[1]
        assert not Invitation.objects.filter(token_hash__contains=token).exists()
        assert [r["id"] for r in client_a.get("/api/v1/orgs/invitations/").json()["results"]] == [body["id"]]
        assert client_a.delete(f"/api/v1/orgs/invitations/{body['id']}/").status_code == 204
        assert client_a.get("/api/v1/orgs/invitations/").json()["count"] == 0

    def test_admin_cannot_invite_owner(self, org_a: Organization) -> None:
        client = api_client_for(add_member(org_a, Role.ADMIN))
        assert_error(
            client.post(
                "/api/v1/orgs/invitations/", {"email": "x@example.test", "role": "owner"}, format="json"
            ),
            403,
        )

    def test_existing_member_conflict(self, client_a: APIClient) -> None:
        response = client_a.post(
            "/api/v1/orgs/invitations/", {"email": "owner@alpha.test", "role": "member"}, format="json"
        )
        assert_error(response, 409, field="email")

    def test_bad_email(self, client_a: APIClient) -> None:
        assert_error(
            client_a.post("/api/v1/orgs/invitations/", {"email": "nope", "role": "member"}, format="json"),
            400,
            field="email",
        )

    def test_cross_org(self, client_a: APIClient, client_b: APIClient) -> None:
        inv = client_a.post(
            "/api/v1/orgs/invitations/", {"email": "z@example.test", "role": "member"}, format="json"
        ).json()
        assert_cross_org_isolated(
            client_b,
            "/api/v1/orgs/invitations/",
            f"/api/v1/orgs/invitations/{inv['id']}/",
            owner_id=inv["id"],
            methods=("delete",),
        )
        assert Invitation.objects.get(pk=inv["id"]).revoked_at is None


class TestTokens:
    def test_create_shows_secret_once_and_stores_only_hash(self, client_a: APIClient) -> None:
        response = client_a.post("/api/v1/orgs/tokens/", {"name": "ci", "role": "member"}, format="json")
        assert response.status_code == 201
        clear = response.json()["token"]
        assert clear.startswith("flt_")
        secret = clear.split("_", 2)[2]
        token = ApiToken.objects.get(pk=response.json()["id"])
        assert secret not in token.secret_hash and clear not in json.dumps(
            list(ApiToken.objects.values()), default=str
        )
        detail = client_a.get(f"/api/v1/orgs/tokens/{token.pk}/").json()
        assert "token" not in detail and detail["prefix"] == token.prefix
        new = APIClient()
        new.credentials(HTTP_AUTHORIZATION=f"Bearer {clear}")
        assert new.get("/api/v1/orgs/current/").json()["role"] == "member"
        assert ApiToken.objects.get(pk=token.pk).last_used_at is not None

    def test_revoked_token_is_401(self, client_a: APIClient) -> None:
        body = client_a.post("/api/v1/orgs/tokens/", {"name": "tmp", "role": "viewer"}, format="json").json()
        other = APIClient()
        other.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
        assert other.get("/api/v1/orgs/current/").status_code == 200
        assert client_a.delete(f"/api/v1/orgs/tokens/{body['id']}/").status_code == 204
        assert_error(other.get("/api/v1/orgs/current/"), 401)

    def test_expired_token_is_401(self, org_a: Organization) -> None:
        from datetime import timedelta

        from django.utils import timezone

        owner = owner_of(org_a)
        client = api_client_for(owner)
        ApiToken.objects.filter(user=owner.user).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert_error(client.get("/api/v1/orgs/current/"), 401)

    def test_expiry_in_past_rejected(self, client_a: APIClient) -> None:
        response = client_a.post(
            "/api/v1/orgs/tokens/",
            {"name": "x", "role": "viewer", "expires_at": "2000-01-01T00:00:00Z"},
            format="json",
        )
        assert_error(response, 400, field="expires_at")

    def test_role_above_creator_rejected(self, org_a: Organization) -> None:
        client = api_client_for(add_member(org_a, Role.MEMBER))
        assert_error(
            client.post("/api/v1/orgs/tokens/", {"name": "x", "role": "admin"}, format="json"),
            400,
            field="role",
        )

    def test_viewer_token_cannot_mutate(self, org_a: Organization) -> None:
        viewer_token_client = api_client_for(owner_of(org_a), role=Role.VIEWER)
        assert_error(viewer_token_client.patch("/api/v1/orgs/current/", {"name": "no"}, format="json"), 403)
        m = add_member(org_a, Role.MEMBER)
        assert_error(viewer_token_client.delete(f"/api/v1/orgs/members/{m.pk}/"), 403)
        assert viewer_token_client.get("/api/v1/orgs/members/").status_code == 200

    def test_token_of_removed_member_stops_working(self, client_a: APIClient, org_a: Organization) -> None:
        m = add_member(org_a, Role.MEMBER)
        client = api_client_for(m)
        assert client.get("/api/v1/orgs/current/").status_code == 200
        client_a.delete(f"/api/v1/orgs/members/{m.pk}/")
        assert client.get("/api/v1/orgs/current/").status_code == 401

    def test_demotion_caps_token_role(self, client_a: APIClient, org_a: Organization) -> None:
        m = add_member(org_a, Role.ADMIN)
        client = api_client_for(m)
        client_a.patch(f"/api/v1/orgs/members/{m.pk}/", {"role": "viewer"}, format="json")
        assert client.get("/api/v1/orgs/current/").json()["role"] == "viewer"
        assert_error(client.patch("/api/v1/orgs/current/", {"name": "no"}, format="json"), 403)

    def test_members_see_only_their_tokens(self, client_a: APIClient, org_a: Organization) -> None:
        client = api_client_for(add_member(org_a, Role.MEMBER))
        owners = client_a.get("/api/v1/orgs/tokens/").json()["results"]
        mine = client.get("/api/v1/orgs/tokens/").json()["results"]
        assert len(mine) == 1 and len(owners) == 2
        owner_token = next(t for t in owners if t["owner"] == "owner@alpha.test")
        assert_error(client.delete(f"/api/v1/orgs/tokens/{owner_token['id']}/"), 404)

    def test_cross_org(self, client_a: APIClient, client_b: APIClient) -> None:
        body = client_a.post(
            "/api/v1/orgs/tokens/", {"name": "a-only", "role": "viewer"}, format="json"
        ).json()
        assert_cross_org_isolated(
            client_b,
            "/api/v1/orgs/tokens/",
            f"/api/v1/orgs/tokens/{body['id']}/",
            owner_id=body["id"],
            methods=("get", "delete"),
        )
        assert ApiToken.objects.get(pk=body["id"]).revoked_at is None


class TestAudit:
    def test_admin_reads_member_cannot(self, client_a: APIClient, org_a: Organization) -> None:
        client_a.patch("/api/v1/orgs/current/", {"name": "Renamed"}, format="json")
        rows = client_a.get("/api/v1/orgs/audit/", {"action": "org."}).json()["results"]
        assert [r["action"] for r in rows] == ["org.updated", "org.created"]
        member = api_client_for(add_member(org_a, Role.MEMBER))
        assert_error(member.get("/api/v1/orgs/audit/"), 403)

    def test_logs_are_per_org(self, client_a: APIClient, client_b: APIClient, org_a: Organization) -> None:
        client_a.patch("/api/v1/orgs/current/", {"name": "Secret rename"}, format="json")
        rows_b = client_b.get("/api/v1/orgs/audit/", {"page_size": 200}).json()["results"]
        assert all(r["after"] != {"name": "Secret rename"} for r in rows_b)
        assert all("alpha" not in (r["object_repr"] or "") for r in rows_b)

    def test_append_only(self, org_a: Organization) -> None:
        with schema_context(org_a.schema_name):
            entry = AuditEntry.objects.first()
            assert entry is not None
            with pytest.raises(ValueError):
                entry.save()
            with pytest.raises(Exception, match="append-only"), connection.cursor() as cursor:
                cursor.execute("DELETE FROM audit_auditentry")


def test_list_query_budget(
    client_a: APIClient, org_a: Organization, django_assert_max_num_queries: object
) -> None:
    for _ in range(15):
        add_member(org_a, Role.VIEWER)
    with django_assert_max_num_queries(8):  # type: ignore[operator]
        assert client_a.get("/api/v1/orgs/members/").json()["count"] == 16


def test_openapi_schema_served() -> None:
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert "/api/v1/orgs/tokens/{id}/" in schema["paths"]
    assert schema["components"]["securitySchemes"]["ApiToken"]["scheme"] == "bearer"
