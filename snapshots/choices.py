"""Enums and state-transition tables of snapshots, restores and storage locations."""

from __future__ import annotations

from django.db import models


class StorageKind(models.TextChoices):
    """Where a location keeps snapshots (every kind goes through a libcloud storage driver)."""

    # The org's own directory under FLOTILLA_SNAPSHOT_DIR: a tenant never chooses a path.
    LOCAL = "local", "Local directory"
    S3 = "s3", "S3-compatible"
    # Any other libcloud storage driver by its provider name.
    LIBCLOUD = "libcloud", "Other libcloud driver"


class SnapshotStatus(models.TextChoices):
    """Where a snapshot is in its life."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"


_S = SnapshotStatus
SNAPSHOT_TRANSITIONS: dict[str, frozenset[str]] = {
    _S.PENDING: frozenset({_S.RUNNING, _S.FAILED, _S.CANCELLED}),
    # Running again after a worker died (a fresh pass of the same operation).
    _S.RUNNING: frozenset({_S.RUNNING, _S.COMPLETED, _S.FAILED, _S.CANCELLED}),
    # Only a completed snapshot is ever restorable; failed and cancelled ones are kept (with
    # their reason) until deleted, their partial chunks already removed.
    _S.COMPLETED: frozenset({_S.DELETING}),
    _S.FAILED: frozenset({_S.DELETING}),
    _S.CANCELLED: frozenset({_S.DELETING}),
    # A deletion the storage refuses is retried by the engine; given up, it stays deleting
    # (and can be asked again).
    _S.DELETING: frozenset({_S.DELETED, _S.DELETING}),
    _S.DELETED: frozenset(),
}
LIVE_SNAPSHOT_STATUSES = frozenset({_S.PENDING, _S.RUNNING, _S.COMPLETED, _S.FAILED, _S.CANCELLED})


class RestoreMode(models.TextChoices):
    """A real restore, or a preview computed with server-side dry-run."""

    RESTORE = "restore", "Restore"
    PREVIEW = "preview", "Preview"


class RestoreStatus(models.TextChoices):
    """Where a restore (or a preview) is."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    # Finished, but some objects failed: the report says which.
    PARTIAL = "partial", "Partially restored"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


_R = RestoreStatus
RESTORE_TRANSITIONS: dict[str, frozenset[str]] = {
    _R.PENDING: frozenset({_R.RUNNING, _R.FAILED, _R.CANCELLED}),
    _R.RUNNING: frozenset({_R.RUNNING, _R.COMPLETED, _R.PARTIAL, _R.FAILED, _R.CANCELLED}),
    _R.COMPLETED: frozenset(),
    _R.PARTIAL: frozenset(),
    _R.FAILED: frozenset(),
    _R.CANCELLED: frozenset(),
}
FINISHED_RESTORE_STATUSES = frozenset({_R.COMPLETED, _R.PARTIAL, _R.FAILED, _R.CANCELLED})


class ExistingPolicy(models.TextChoices):
    """What a restore does with an object the target already holds."""

    SKIP = "skip", "Skip it"
    UPDATE = "update", "Update it (server-side apply)"
    FAIL = "fail", "Fail the restore"


class ItemAction(models.TextChoices):
    """What a restore did (or, in a preview, would do) with one object."""

    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    UNCHANGED = "unchanged", "Unchanged"
    SKIP = "skip", "Skip"
    CONFLICT = "conflict", "Conflict"
    FAIL = "fail", "Fail"


class ItemResult(models.TextChoices):
    """Whether an item's action happened."""

    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    PLANNED = "planned", "Planned (preview)"


class SnapshotOperationKind(models.TextChoices):
    """The engine's job kinds this app registers."""

    SNAPSHOT = "snapshot", "Snapshot"
    SNAPSHOT_DELETE = "snapshot_delete", "Delete a snapshot"
    RESTORE = "restore", "Restore"
    RESTORE_PREVIEW = "restore_preview", "Preview a restore"
