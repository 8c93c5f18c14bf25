"""Domain errors of snapshots, restores and storage locations."""

from __future__ import annotations

from orgs.exceptions import Conflict, FlotillaError, ValidationFailed


class SnapshotInvalid(ValidationFailed):
    """A snapshot, restore or location request names a bad field."""


class SnapshotNotReady(Conflict):
    """The snapshot (or the target cluster) is not in a state that allows this."""

    code = "not_ready"


class StorageInUse(Conflict):
    """A storage location still holds snapshots."""

    code = "storage_in_use"


class RestoreRefused(FlotillaError):
    """A restore cannot start or go on: the target does not serve a kind, or refuses the restore."""

    code = "restore_refused"
    status = 409
    retryable = False
