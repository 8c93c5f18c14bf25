"""The permission matrix: the least role each action needs. Enforced by services.

docs/permissions.md renders this table; tests/orgs/test_permissions.py walks every cell.
"""

from __future__ import annotations

from enum import StrEnum

from orgs.actors import Actor
from orgs.choices import ActorSource, Role
from orgs.exceptions import PermissionDenied


class Action(StrEnum):
    """Everything a member can be allowed or refused."""

    ORG_VIEW = "org.view"
    ORG_UPDATE = "org.update"
    MEMBER_VIEW = "member.view"
    MEMBER_INVITE = "member.invite"
    MEMBER_CHANGE_ROLE = "member.change_role"
    MEMBER_REMOVE = "member.remove"
    TOKEN_CREATE = "token.create"
    TOKEN_VIEW_ALL = "token.view_all"
    TOKEN_REVOKE_ANY = "token.revoke_any"
    AUDIT_VIEW = "audit.view"
    PROVIDER_VIEW = "provider.view"
    PROVIDER_MANAGE = "provider.manage"
    CLUSTER_VIEW = "cluster.view"
    CLUSTER_CREATE = "cluster.create"
    CLUSTER_UPDATE = "cluster.update"
    CLUSTER_DELETE = "cluster.delete"
    KUBECONFIG_DOWNLOAD = "cluster.kubeconfig"


MATRIX: dict[Action, Role] = {
    Action.ORG_VIEW: Role.VIEWER,
    Action.ORG_UPDATE: Role.ADMIN,
    Action.MEMBER_VIEW: Role.VIEWER,
    Action.MEMBER_INVITE: Role.ADMIN,
    Action.MEMBER_CHANGE_ROLE: Role.ADMIN,
    Action.MEMBER_REMOVE: Role.ADMIN,
    # Anyone may automate what they can already do: a token's role is capped at the creator's.
    Action.TOKEN_CREATE: Role.VIEWER,
    Action.TOKEN_VIEW_ALL: Role.ADMIN,
    Action.TOKEN_REVOKE_ANY: Role.ADMIN,
    Action.AUDIT_VIEW: Role.ADMIN,
    Action.PROVIDER_VIEW: Role.VIEWER,
    # Credentials reach the org's cloud bills: only admins connect or remove them.
    Action.PROVIDER_MANAGE: Role.ADMIN,
    Action.CLUSTER_VIEW: Role.VIEWER,
    # Create, scale, add/remove pools, upgrade, import. Cancelling or retrying an operation
    # needs the action of its kind (clusters.services.clusters.operation_action).
    Action.CLUSTER_CREATE: Role.MEMBER,
    Action.CLUSTER_UPDATE: Role.MEMBER,
    Action.CLUSTER_DELETE: Role.ADMIN,
    # A kubeconfig is cluster-admin on the real cluster.
    Action.KUBECONFIG_DOWNLOAD: Role.MEMBER,
}


def can(actor: Actor, action: Action) -> bool:
    """Whether the actor may perform the action in its org."""
    if actor.is_staff and actor.source == ActorSource.ADMIN:
        return True
    if actor.role is None:
        return False
    return Role(actor.role).at_least(MATRIX[action])


def require(actor: Actor, action: Action) -> None:
    """Raise PermissionDenied unless the actor may perform the action."""
    if not can(actor, action):
        needed = MATRIX[action].label.lower()
        raise PermissionDenied(f"This needs the {needed} role or higher ({action.value}).")
