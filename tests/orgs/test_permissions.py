"""The permission matrix, cell by cell, and its enforcement inside the services."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from clusters.permissions import Action as ClusterAction
from orgs.actors import Actor
from orgs.choices import ActorSource, Role
from orgs.exceptions import PermissionDenied
from orgs.models import Organization
from orgs.permissions import Action, can, register_actions, registered_actions
from orgs.selectors import audit_entries, list_invitations
from orgs.services import members as member_services
from orgs.services.organizations import update_organization
from tests.factories import actor_for, add_member

ROLES = list(Role)

# The matrix written out by hand: action → allowed for (viewer, member, admin, owner).
# It must change with docs/permissions.md, never be derived from the code it checks.
Y, N = True, False
TABLE: dict[str, tuple[bool, bool, bool, bool]] = {
    "org.view": (Y, Y, Y, Y),
    "org.update": (N, N, Y, Y),
    "member.view": (Y, Y, Y, Y),
    "member.invite": (N, N, Y, Y),
    "member.change_role": (N, N, Y, Y),
    "member.remove": (N, N, Y, Y),
    "token.create": (Y, Y, Y, Y),
    "token.view_all": (N, N, Y, Y),
    "token.revoke_any": (N, N, Y, Y),
    "audit.view": (N, N, Y, Y),
    "provider.view": (Y, Y, Y, Y),
    "provider.manage": (N, N, Y, Y),
    "cluster.view": (Y, Y, Y, Y),
    "cluster.create": (N, Y, Y, Y),
    "cluster.update": (N, Y, Y, Y),
    "cluster.delete": (N, N, Y, Y),
    "cluster.kubeconfig": (N, Y, Y, Y),
    "app.view": (Y, Y, Y, Y),
    "app.deploy": (N, Y, Y, Y),
    "app.delete": (N, Y, Y, Y),
    "snapshot.view": (Y, Y, Y, Y),
    "snapshot.create": (N, Y, Y, Y),
    "snapshot.delete": (N, N, Y, Y),
    "snapshot.restore": (N, Y, Y, Y),
    "storage.view": (Y, Y, Y, Y),
    "storage.manage": (N, N, Y, Y),
}
COLUMNS = (Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER)


def _action(value: str) -> StrEnum:
    return next(a for a in registered_actions() if a.value == value)


@pytest.mark.parametrize("role", COLUMNS)
@pytest.mark.parametrize("value", list(TABLE))
def test_matrix_cell(role: Role, value: str) -> None:
    actor = Actor(org=None, user=None, role=role, source=ActorSource.API)
    assert can(actor, _action(value)) is TABLE[value][COLUMNS.index(role)]


def test_every_registered_action_has_a_row() -> None:
    assert sorted(a.value for a in registered_actions()) == sorted(TABLE)


def test_the_permissions_doc_names_every_action() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "permissions.md").read_text()
    assert [value for value in TABLE if f"`{value}`" not in doc] == []


def test_apps_register_their_actions_with_the_same_members() -> None:
    # Clusters code checks `clusters.permissions.Action.CLUSTER_*`; orgs no longer knows them.
    assert ClusterAction.CLUSTER_DELETE in registered_actions()
    assert not hasattr(Action, "CLUSTER_VIEW")


def test_an_unregistered_action_is_a_configuration_error() -> None:
    class Stray(StrEnum):
        THING = "stray.thing"

    actor = Actor(org=None, user=None, role=Role.OWNER, source=ActorSource.API)
    with pytest.raises(ImproperlyConfigured, match=r"stray\.thing"):
        can(actor, Stray.THING)


def test_an_action_registered_twice_with_another_role_is_refused() -> None:
    class Clash(StrEnum):
        VIEW = "cluster.view"

    register_actions({ClusterAction.CLUSTER_VIEW: Role.VIEWER})  # the same again is harmless
    with pytest.raises(ImproperlyConfigured, match=r"cluster\.view"):
        register_actions({Clash.VIEW: Role.ADMIN})


def test_no_role_means_nothing() -> None:
    actor = Actor(org=None, user=None, role=None, source=ActorSource.API)
    assert not any(can(actor, a) for a in registered_actions())


def test_staff_in_admin_may_do_everything() -> None:
    actor = Actor(org=None, user=None, role=None, source=ActorSource.ADMIN, is_staff=True)
    assert all(can(actor, a) for a in registered_actions())


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
