"""The snapshots app's models: storage locations, snapshots, restores and their reports."""

from snapshots.models.restores import Restore, RestoreItem
from snapshots.models.snapshots import Snapshot
from snapshots.models.storage import StorageLocation

__all__ = ["Restore", "RestoreItem", "Snapshot", "StorageLocation"]
