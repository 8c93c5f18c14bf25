"""The permission matrix, cell by cell, and its enforcement inside the services."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orgs.actors import Actor
from orgs.choices import ActorSource, Role
from orgs.exceptions import PermissionDenied
from orgs.models import Organization
from orgs.permissions import MATRIX, Action, can
from orgs.selectors import audit_entries, list_invitations
from orgs.services import members as member_services
from orgs.services.organizations import update_organization
from tests.factories import actor_for, add_member

ROLES = list(Role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_matrix_cell(role: Role, action: Action) -> None:
    actor = Actor(org=None, user=None, role=role, source=ActorSource.API)
    assert can(actor, action) is (role.rank >= MATRIX[action].rank)


def test_every_action_has_a_cell() -> None:
    assert set(MATRIX) == set(Action)


def test_no_role_means_nothing() -> None:
    actor = Actor(org=None, user=None, role=None, source=ActorSource.API)
    assert not any(can(actor, a) for a in Action)


def test_staff_in_admin_may_do_everything() -> None:
    actor = Actor(org=None, user=None, role=None, source=ActorSource.ADMIN, is_staff=True)
    assert all(can(actor, a) for a in Action)


Operation = Callable[[Actor, Organization], object]

OPERATIONS: dict[str, tuple[Operation, Role]] = {
    "rename org": (lambda actor, org: update_organization(actor, org, name="New"), Role.ADMIN),
    "invite": (
        lambda actor, org: member_services.invite_member(
            actor, email="n@x.test", role="viewer", base_url="http://t"
        ),
        Role.ADMIN,
    ),
    "change role": (
        lambda actor, org: member_services.change_member_role(
            actor, add_member(org, Role.VIEWER), role="member"
        ),
        Role.ADMIN,
    ),
    "remove member": (
        lambda actor, org: member_services.remove_member(actor, add_member(org, Role.VIEWER)),
        Role.ADMIN,
    ),
    "read audit": (lambda actor, org: list(audit_entries(actor)), Role.ADMIN),
    "list invitations": (lambda actor, org: list(list_invitations(actor)), Role.ADMIN),
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_services_enforce_the_matrix(org_a: Organization, role: Role, operation: str) -> None:
    run, least = OPERATIONS[operation]
    actor = actor_for(add_member(org_a, role))
    if role.rank >= least.rank:
        run(actor, org_a)
    else:
        with pytest.raises(PermissionDenied):
            run(actor, org_a)


@pytest.mark.django_db
class TestRoleCeilings:
    def test_admin_cannot_touch_an_owner(self, org_a: Organization) -> None:
        admin = actor_for(add_member(org_a, Role.ADMIN))
        owner = add_member(org_a, Role.OWNER)
        with pytest.raises(PermissionDenied):
            member_services.change_member_role(admin, owner, role="viewer")
        with pytest.raises(PermissionDenied):
            member_services.remove_member(admin, owner)

    def test_admin_cannot_grant_owner(self, org_a: Organization) -> None:
        admin = actor_for(add_member(org_a, Role.ADMIN))
        with pytest.raises(PermissionDenied):
            member_services.change_member_role(admin, add_member(org_a, Role.MEMBER), role="owner")

    def test_anyone_may_leave(self, org_a: Organization) -> None:
        viewer = add_member(org_a, Role.VIEWER)
        member_services.remove_member(actor_for(viewer), viewer)
