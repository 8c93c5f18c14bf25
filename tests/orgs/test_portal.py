"""Portal pages: sign-up, sign-in, members, invitations, tokens, audit — and isolation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client, override_settings

from orgs.choices import Role
from orgs.models import ApiToken, Membership, Organization, User
from tests.factories import PASSWORD, add_member, make_org, make_user, owner_of

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def invite_path(page: str) -> str:
    """The path of the invitation link a members page shows once."""
    link = re.search(r'data-testid="invite-link">([^<]+)<', page)
    assert link, page
    return "/" + link.group(1).split("/", 3)[3]


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname=%s", [name])
        return cursor.fetchone() is not None


class TestSignUp:
    FORM = {
        "org_name": "Acme",
        "slug": "acme",
        "full_name": "A",
        "email": "a@acme.test",
        "password": PASSWORD,
    }

    def test_creates_org_schema_and_owner(self) -> None:
        response = Client().post("/signup/", self.FORM)
        assert response.status_code == 302 and response["Location"] == "/o/acme/"
        org = Organization.objects.get(slug="acme")
        assert schema_exists(org.schema_name)
        assert Membership.objects.get(org=org).role == Role.OWNER

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("slug", "Bad Slug"),
            ("slug", "ab"),
            ("slug", "admin"),
            ("slug", "-lead"),
            ("email", "nope"),
            ("password", "123"),
        ],
    )
    def test_bad_input_names_the_field_and_creates_nothing(self, field: str, value: str) -> None:
        response = Client().post("/signup/", {**self.FORM, field: value})
        assert response.status_code == 400
        assert f'data-field="{field}"' in response.content.decode()
        assert not User.objects.filter(email="a@acme.test").exists()
        assert not schema_exists("org_acme")

    def test_taken_slug(self) -> None:
        make_org("acme")
        response = Client().post("/signup/", {**self.FORM, "email": "other@acme.test"})
        assert response.status_code == 400 and "This slug is taken." in response.content.decode()
        assert not User.objects.filter(email="other@acme.test").exists()

    def test_failure_after_the_schema_exists_leaves_no_orphan(self) -> None:
        # Another org already holds the domain row this sign-up needs: the insert fails after
        # the schema was cloned, and the whole sign-up must roll back with it.
        other = make_org("other")
        other.domains.create(domain="acme.flotilla.localhost", is_primary=False)
        response = Client().post("/signup/", self.FORM)
        assert response.status_code == 400
        assert not schema_exists("org_acme")
        assert not Organization.objects.filter(slug="acme").exists()
        assert not User.objects.filter(email="a@acme.test").exists()


class TestSignIn:
    def test_sign_in_and_out(self, org_a: Organization) -> None:
        client = Client()
        response = client.post("/login/", {"username": "owner@alpha.test", "password": PASSWORD})
        assert response.status_code == 302
        assert client.get("/o/alpha/").status_code == 200
        client.post("/logout/")
        assert client.get("/o/alpha/").status_code == 302

    @override_settings(SIGNIN_RATE="3/min")
    def test_rate_limited(self, org_a: Organization) -> None:
        client = Client()
        codes = [
            client.post("/login/", {"username": "owner@alpha.test", "password": "wrong"}).status_code
            for _ in range(5)
        ]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        # Even the right password is refused until the window passes.
        assert (
            client.post("/login/", {"username": "owner@alpha.test", "password": PASSWORD}).status_code == 429
        )


class TestIsolation:
    PAGES = ["", "members/", "tokens/", "audit/", "settings/"]

    @pytest.mark.parametrize("page", PAGES)
    def test_other_orgs_pages_are_404(self, org_a: Organization, org_b: Organization, page: str) -> None:
        outsider = signed_in(owner_of(org_b).user)
        assert outsider.get(f"/o/alpha/{page}").status_code == 404
        assert outsider.get(f"/o/bravo/{page}").status_code == 200

    def test_unknown_org_is_the_same_404(self, org_b: Organization) -> None:
        outsider = signed_in(owner_of(org_b).user)
        assert outsider.get("/o/no-such-org/").status_code == 404

    def test_anonymous_is_sent_to_sign_in(self, org_a: Organization) -> None:
        response = Client().get("/o/alpha/members/")
        assert response.status_code == 302 and response["Location"].startswith("/login/")

    def test_cannot_act_on_another_orgs_member(self, org_a: Organization, org_b: Organization) -> None:
        victim = add_member(org_a, Role.VIEWER)
        outsider = signed_in(owner_of(org_b).user)
        outsider.post(f"/o/bravo/members/{victim.pk}/role/", {"role": "admin"})
        outsider.post(f"/o/bravo/members/{victim.pk}/remove/")
        victim.refresh_from_db()
        assert victim.role == Role.VIEWER

    def test_suspended_org_is_refused(self, org_a: Organization) -> None:
        from django.utils import timezone

        Organization.objects.filter(pk=org_a.pk).update(suspended_at=timezone.now())
        assert signed_in(owner_of(org_a).user).get("/o/alpha/").status_code == 403


class TestMembersAndInvitations:
    def test_invite_link_accepted_by_new_account(
        self, org_a: Organization, django_capture_on_commit_callbacks: Any
    ) -> None:
        owner = signed_in(owner_of(org_a).user)
        with django_capture_on_commit_callbacks(execute=True):
            response = owner.post("/o/alpha/members/", {"email": "new@x.test", "role": "member"}, follow=True)
        path = invite_path(response.content.decode())
        assert len(mail.outbox) == 1 and path in mail.outbox[0].body
        newcomer = Client()
        assert "Create account and join" in newcomer.get(path).content.decode()
        response = newcomer.post(path, {"full_name": "New", "password": PASSWORD})
        assert response.status_code == 302 and response["Location"] == "/o/alpha/"
        assert Membership.objects.get(org=org_a, user__email="new@x.test").role == Role.MEMBER
        assert Client().get(path).status_code == 404  # used

    def test_invite_for_someone_else_is_refused(self, org_a: Organization) -> None:
        owner = signed_in(owner_of(org_a).user)
        response = owner.post("/o/alpha/members/", {"email": "invited@x.test", "role": "member"}, follow=True)
        path = invite_path(response.content.decode())
        stranger = signed_in(make_user("stranger@x.test"))
        stranger.post(path)
        assert not Membership.objects.filter(org=org_a, user__email="stranger@x.test").exists()

    def test_role_change_and_remove(self, org_a: Organization) -> None:
        owner = signed_in(owner_of(org_a).user)
        m = add_member(org_a, Role.VIEWER)
        owner.post(f"/o/alpha/members/{m.pk}/role/", {"role": "admin"})
        m.refresh_from_db()
        assert m.role == Role.ADMIN
        owner.post(f"/o/alpha/members/{m.pk}/remove/")
        assert not Membership.objects.filter(pk=m.pk).exists()

    def test_viewer_sees_no_manage_controls(self, org_a: Organization) -> None:
        viewer = signed_in(add_member(org_a, Role.VIEWER).user)
        page = viewer.get("/o/alpha/members/").content.decode()
        assert "Invite someone" not in page and 'name="role"' not in page

    def test_members_table_query_budget(
        self, org_a: Organization, django_assert_max_num_queries: object
    ) -> None:
        for _ in range(20):
            add_member(org_a, Role.VIEWER)
        owner = signed_in(owner_of(org_a).user)
        with django_assert_max_num_queries(15):  # type: ignore[operator]
            assert owner.get("/o/alpha/members/").status_code == 200


class TestTokens:
    def test_token_shown_once(self, org_a: Organization) -> None:
        owner = signed_in(owner_of(org_a).user)
        response = owner.post("/o/alpha/tokens/", {"name": "ci", "role": "viewer"}, follow=True)
        clear = re.search(r'data-testid="new-token-value">(flt_[^<]+)<', response.content.decode())
        assert clear and response["Cache-Control"] == "no-store"
        assert clear.group(1) not in owner.get("/o/alpha/tokens/").content.decode()
        token = ApiToken.objects.get(name="ci")
        owner.post(f"/o/alpha/tokens/{token.pk}/revoke/")
        token.refresh_from_db()
        assert token.revoked_at is not None

    def test_bad_token_form(self, org_a: Organization) -> None:
        viewer = signed_in(add_member(org_a, Role.VIEWER).user)
        response = viewer.post("/o/alpha/tokens/", {"name": "x", "role": "owner"})
        assert response.status_code == 400 and 'data-field="role"' in response.content.decode()
        assert not ApiToken.objects.filter(name="x").exists()


def test_audit_page_for_admins_only(org_a: Organization) -> None:
    owner = signed_in(owner_of(org_a).user)
    page = owner.get("/o/alpha/audit/?action=org.").content.decode()
    assert "org.created" in page
    member = signed_in(add_member(org_a, Role.MEMBER).user)
    assert member.get("/o/alpha/audit/").status_code == 302


def test_security_headers(org_a: Organization) -> None:
    response = signed_in(owner_of(org_a).user).get("/o/alpha/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
