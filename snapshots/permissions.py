"""The snapshots app's actions in the permission matrix, registered from SnapshotsConfig.ready()."""

from __future__ import annotations

from enum import StrEnum

from orgs.choices import Role
from orgs.permissions import can, require

__all__ = ["MATRIX", "Action", "can", "require"]


class Action(StrEnum):
    """What a member can be allowed or refused about snapshots, restores and storage."""

    SNAPSHOT_VIEW = "snapshot.view"
    SNAPSHOT_CREATE = "snapshot.create"
    SNAPSHOT_DELETE = "snapshot.delete"
    RESTORE = "snapshot.restore"
    STORAGE_VIEW = "storage.view"
    STORAGE_MANAGE = "storage.manage"


MATRIX: dict[Action, Role] = {
    Action.SNAPSHOT_VIEW: Role.VIEWER,
    Action.SNAPSHOT_CREATE: Role.MEMBER,
    # A deleted snapshot cannot be brought back.
    Action.SNAPSHOT_DELETE: Role.ADMIN,
    # Restore or preview into one of the org's clusters (what a member may deploy there anyway).
    Action.RESTORE: Role.MEMBER,
    Action.STORAGE_VIEW: Role.VIEWER,
    # Storage credentials, and where every snapshot of the org goes.
    Action.STORAGE_MANAGE: Role.ADMIN,
}
