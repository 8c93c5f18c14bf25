"""The permission matrix: the least role each action needs. Enforced by services.

`orgs` declares its own actions here; every other app declares its own in its own module and
registers them from its AppConfig.ready() (`register_actions`), so that a new app never edits
`orgs`. docs/permissions.md renders the whole table; tests/orgs/test_permissions.py pins it
cell by cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

from orgs.actors import Actor
from orgs.choices import ActorSource, Role
from orgs.exceptions import PermissionDenied


class Action(StrEnum):
    """Everything a member can be allowed or refused in the org itself."""

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


ORG_MATRIX: dict[Action, Role] = {
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
}

A = TypeVar("A", bound=StrEnum)

# Every registered action (any app's StrEnum member) and its least role, in registration order.
_matrix: dict[str, Role] = {}


def register_actions(matrix: Mapping[A, Role]) -> None:
    """An app's actions and the least role each needs; called from its AppConfig.ready().

    Registering the same action again with the same role is harmless (ready() may run twice in
    tests); an action value another app already registered with another role is refused.
    """
    for action, role in matrix.items():
        known = next((a for a in _matrix if a == action.value), None)
        if known is not None and (_matrix[known] != role or type(known) is not type(action)):
            raise ImproperlyConfigured(f"The action {action.value!r} is registered twice.")
        _matrix[action] = Role(role)


register_actions(ORG_MATRIX)


def registered_actions() -> list[StrEnum]:
    """Every action of every app, in registration order (orgs first)."""
    return [a for a in _matrix if isinstance(a, StrEnum)]


def least_role(action: str) -> Role:
    """The least role an action needs (a registered member, or its value)."""
    try:
        return _matrix[action]
    except KeyError:
        raise ImproperlyConfigured(
            f"The action {str(action)!r} is not registered: register it from its app's ready()."
        ) from None


def can(actor: Actor, action: str) -> bool:
    """Whether the actor may perform the action in its org."""
    needed = least_role(action)
    if actor.is_staff and actor.source == ActorSource.ADMIN:
        return True
    if actor.role is None:
        return False
    return Role(actor.role).at_least(needed)


def require(actor: Actor, action: str) -> None:
    """Raise PermissionDenied unless the actor may perform the action."""
    if not can(actor, action):
        needed = least_role(action).label.lower()
        raise PermissionDenied(f"This needs the {needed} role or higher ({action}).")
