"""Rate limits and caps against abuse, through the real views with the test client.

Sign-in (portal and Django admin) is limited per normalised email and per client address;
sign-up per client address; founding orgs per user; and one person owns at most
FLOTILLA_MAX_ORGS_PER_USER orgs. The test settings relax every rate; each test sets a tight one.
Windows are an hour long, so a test never straddles one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings

from orgs.models import Membership, Organization, User
from tests.factories import PASSWORD, make_org, make_user, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname=%s", [name])
        return cursor.fetchone() is not None


WRONG = "not-the-password"


def sign_in(client: Client, email: str, password: str = WRONG, path: str = "/login/") -> int:
    return client.post(path, {"username": email, "password": password}).status_code


# Spaces and case make the same address: none of them may open a fresh budget of guesses.
VARIANTS = ["owner@alpha.test", "  owner@alpha.test ", "OWNER@Alpha.test", " Owner@ALPHA.TEST"]


class TestSignIn:
    @override_settings(SIGNIN_RATE="3/hour")
    def test_spaces_and_case_share_one_budget(self, org_a: Organization) -> None:
        client = Client()
        assert [sign_in(client, email) for email in VARIANTS] == [200, 200, 200, 429]
        # Refused before the password is even looked at, right or wrong.
        assert sign_in(client, "owner@alpha.test", PASSWORD) == 429
        assert client.get("/o/alpha/").status_code == 302

    @override_settings(SIGNIN_RATE="3/hour")
    def test_the_budget_follows_the_email_across_addresses(self, org_a: Organization) -> None:
        codes = [sign_in(Client(REMOTE_ADDR=f"10.0.0.{n}"), VARIANTS[n]) for n in range(4)]
        assert codes == [200, 200, 200, 429]

    @override_settings(SIGNIN_IP_RATE="3/hour")
    def test_one_address_cannot_spray_many_emails(self, org_a: Organization) -> None:
        client = Client(REMOTE_ADDR="10.0.0.9")
        codes = [sign_in(client, f"someone{n}@alpha.test") for n in range(4)]
        assert codes == [200, 200, 200, 429]
        assert sign_in(Client(REMOTE_ADDR="10.0.0.10"), "someone9@alpha.test") == 200

    def test_case_and_spaces_still_sign_in(self, org_a: Organization) -> None:
        client = Client()
        response = client.post("/login/", {"username": " OWNER@Alpha.test ", "password": PASSWORD})
        assert response.status_code == 302
        assert client.get("/o/alpha/").status_code == 200


@pytest.fixture
def staff_user() -> User:
    return make_user("staff@flotilla.test", is_staff=True, is_superuser=True)


class TestAdminSignIn:
    @override_settings(SIGNIN_RATE="3/hour")
    def test_admin_login_is_limited_per_normalised_email(self, staff_user: User) -> None:
        client = Client()
        variants = ["staff@flotilla.test", " STAFF@flotilla.test", "Staff@Flotilla.Test "]
        assert [sign_in(client, email, path="/admin/login/") for email in variants] == [200, 200, 200]
        refused = client.post("/admin/login/", {"username": staff_user.email, "password": PASSWORD})
        assert refused.status_code == 429
        assert "Too many sign-in attempts" in refused.content.decode()
        assert client.get("/admin/").status_code == 302  # not signed in

    @override_settings(SIGNIN_IP_RATE="2/hour")
    def test_admin_login_is_limited_per_address(self, staff_user: User) -> None:
        client = Client(REMOTE_ADDR="10.1.0.1")
        codes = [sign_in(client, f"x{n}@flotilla.test", path="/admin/login/") for n in range(3)]
        assert codes == [200, 200, 429]

    @override_settings(SIGNIN_RATE="3/hour")
    def test_portal_and_admin_share_the_budget(self, staff_user: User) -> None:
        client = Client()
        assert sign_in(client, "staff@flotilla.test") == 200
        assert sign_in(client, "staff@flotilla.test", path="/admin/login/") == 200
        assert sign_in(client, " staff@flotilla.test") == 200
        assert sign_in(client, "STAFF@flotilla.test", path="/admin/login/") == 429

    def test_admin_login_still_works_and_keeps_csrf(self, staff_user: User) -> None:
        client = Client()
        response = client.post("/admin/login/", {"username": " Staff@Flotilla.test", "password": PASSWORD})
        assert response.status_code == 302
        assert client.get("/admin/").status_code == 200
        strict = Client(enforce_csrf_checks=True)
        assert (
            strict.post("/admin/login/", {"username": staff_user.email, "password": PASSWORD}).status_code
            == 403
        )


def signup_form(n: int) -> dict[str, str]:
    return {
        "org_name": f"Acme {n}",
        "slug": f"acme-{n}",
        "full_name": "A",
        "email": f"a{n}@acme.test",
        "password": PASSWORD,
    }


class TestSignUp:
    @override_settings(SIGNUP_RATE="2/hour")
    def test_sign_ups_are_limited_per_address(self) -> None:
        codes = [
            Client(REMOTE_ADDR="10.2.0.1").post("/signup/", signup_form(n)).status_code for n in range(3)
        ]
        assert codes == [302, 302, 429]
        assert not User.objects.filter(email="a2@acme.test").exists()
        assert not schema_exists("org_acme_2")
        page = Client(REMOTE_ADDR="10.2.0.1").post("/signup/", signup_form(3)).content.decode()
        assert "Too many sign-ups from your address" in page
        # Another address has a budget of its own.
        assert Client(REMOTE_ADDR="10.2.0.2").post("/signup/", signup_form(4)).status_code == 302


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def found(client: Client, slug: str) -> tuple[int, str]:
    response = client.post("/orgs/", {"name": slug.title(), "slug": slug})
    return response.status_code, response.content.decode()


class TestFoundingOrgs:
    @override_settings(ORG_CREATE_RATE="2/hour", FLOTILLA_MAX_ORGS_PER_USER=10)
    def test_org_creation_is_limited_per_user(self, org_a: Organization) -> None:
        owner = owner_of(org_a).user
        client = signed_in(owner)
        assert [found(client, slug)[0] for slug in ("one", "two")] == [302, 302]
        status, page = found(client, "three")
        assert status == 429 and "too many organisations recently" in page
        assert not Organization.objects.filter(slug="three").exists() and not schema_exists("org_three")
        # The budget is the user's, not the address's: someone else may still found one.
        other = make_user("other@x.test")
        assert found(signed_in(other), "four")[0] == 302

    @override_settings(FLOTILLA_MAX_ORGS_PER_USER=2)
    def test_a_person_owns_at_most_the_cap(self, org_a: Organization) -> None:
        owner = owner_of(org_a).user
        client = signed_in(owner)
        assert found(client, "second")[0] == 302
        status, page = found(client, "third")
        assert status == 409
        assert "the most one person may own (2)" in page
        assert not Organization.objects.filter(slug="third").exists() and not schema_exists("org_third")
        assert Membership.objects.filter(user=owner).count() == 2

    @override_settings(FLOTILLA_MAX_ORGS_PER_USER=1)
    def test_staff_and_the_operator_are_exempt(self, org_a: Organization, staff_user: User) -> None:
        staff = signed_in(staff_user)
        assert [found(staff, slug)[0] for slug in ("ops-one", "ops-two")] == [302, 302]
        # Staff may found another org for a user who is at the cap, through the admin.
        owner = owner_of(org_a).user
        response = staff.post(
            "/admin/orgs/organization/add/", {"name": "Gamma", "slug": "gamma", "owner_email": owner.email}
        )
        assert response.status_code == 302
        assert Organization.objects.get(slug="gamma").memberships.get().user == owner

    @override_settings(FLOTILLA_MAX_ORGS_PER_USER=1)
    def test_membership_without_ownership_does_not_count(self) -> None:
        someone = make_user("someone@x.test")
        org = make_org("hosted")
        Membership.objects.create(user=someone, org=org, role="admin")
        assert found(signed_in(someone), "mine")[0] == 302
