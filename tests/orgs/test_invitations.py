"""Accepting an invitation with a new account: one transaction, sign-up's password rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from orgs.actors import Actor
from orgs.choices import ActorSource, Role
from orgs.exceptions import Conflict, NotFound, ValidationFailed
from orgs.models import Invitation, Membership, Organization, User
from orgs.services import members as member_services
from tests.factories import PASSWORD, actor_for, owner_of

pytestmark = pytest.mark.django_db

INVITED = "invited@x.test"


class RevokeWhileValidating:
    """A password validator that withdraws the invitation as the password is checked.

    It stands for an admin revoking the invitation in another request between the form's
    validation and the acceptance: the window in which an account used to be made.
    """

    def validate(self, password: str, user: Any = None) -> None:
        Invitation.objects.filter(email=INVITED, revoked_at__isnull=True).update(revoked_at=timezone.now())

    def get_help_text(self) -> str:
        return ""


REVOKING = [{"NAME": f"{__name__}.RevokeWhileValidating"}]


def _invite(org: Organization) -> str:
    """An invitation for INVITED as a member; returns the token of its link."""
    _, link = member_services.invite_member(
        actor_for(owner_of(org)), email=INVITED, role="member", base_url="http://t"
    )
    return link.rstrip("/").rsplit("/", 1)[1]


def _source(org: Organization) -> Actor:
    return Actor(org=org, user=None, role=None, source=ActorSource.PORTAL, ip="127.0.0.1")


def test_new_account_joins_in_one_step(org_a: Organization) -> None:
    token = _invite(org_a)
    user, membership = member_services.accept_invitation_as_new_user(
        token, password=PASSWORD, full_name="New Person", actor_source=_source(org_a)
    )
    assert user.email == INVITED and user.check_password(PASSWORD) and user.full_name == "New Person"
    assert (membership.org, membership.role) == (org_a, Role.MEMBER)
    assert Invitation.objects.get(email=INVITED).accepted_by == user


def test_revoked_between_validation_and_acceptance_leaves_no_account(org_a: Organization) -> None:
    path = f"/invite/{_invite(org_a)}/"
    with override_settings(AUTH_PASSWORD_VALIDATORS=REVOKING):
        response = Client().post(path, {"full_name": "Late", "password": PASSWORD})
    assert response.status_code == 400
    assert not User.objects.filter(email=INVITED).exists()
    assert not Membership.objects.filter(org=org_a).exclude(role=Role.OWNER).exists()


@pytest.mark.parametrize("spoil", ["revoked_at", "accepted_at", "expires_at"])
def test_unusable_invitation_creates_no_account(org_a: Organization, spoil: str) -> None:
    token = _invite(org_a)
    moment = timezone.now() - timedelta(seconds=1)
    Invitation.objects.filter(email=INVITED).update(**{spoil: moment})
    with pytest.raises(NotFound):
        member_services.accept_invitation_as_new_user(
            token, password=PASSWORD, full_name="", actor_source=_source(org_a)
        )
    assert not User.objects.filter(email=INVITED).exists()


def test_password_rules_are_sign_ups(org_a: Organization) -> None:
    token = _invite(org_a)
    with pytest.raises(ValidationFailed) as refused:
        member_services.accept_invitation_as_new_user(
            token, password="123", full_name="", actor_source=_source(org_a)
        )
    signup = Client().post(
        "/signup/", {"org_name": "Z", "slug": "zulu", "email": "z@x.test", "password": "123"}
    )
    assert signup.status_code == 400
    for reason in refused.value.fields["password"]:
        assert reason in signup.content.decode()
    assert not User.objects.filter(email=INVITED).exists()


def test_an_existing_account_must_sign_in_instead(org_a: Organization) -> None:
    token = _invite(org_a)
    User.objects.create_user(email=INVITED, password=PASSWORD)
    with pytest.raises(Conflict):
        member_services.accept_invitation_as_new_user(
            token, password=PASSWORD, full_name="", actor_source=_source(org_a)
        )
    assert Invitation.objects.get(email=INVITED).accepted_at is None
    assert not Membership.objects.filter(org=org_a, user__email=INVITED).exists()
