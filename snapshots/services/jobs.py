"""The engine's job kinds of this app, registered from SnapshotsConfig.ready()."""

from __future__ import annotations

from clusters.engine.jobs import register_job
from snapshots.choices import SnapshotOperationKind
from snapshots.services.restore_jobs import RestoreJob
from snapshots.services.snapshot_jobs import SnapshotJob


def register_snapshot_jobs() -> None:
    """Make snapshots, their deletion, restores and previews runnable by the engine."""
    snapshots, restores = SnapshotJob(), RestoreJob()
    register_job(SnapshotOperationKind.SNAPSHOT, snapshots, label=SnapshotOperationKind.SNAPSHOT.label)
    register_job(
        SnapshotOperationKind.SNAPSHOT_DELETE, snapshots, label=SnapshotOperationKind.SNAPSHOT_DELETE.label
    )
    register_job(SnapshotOperationKind.RESTORE, restores, label=SnapshotOperationKind.RESTORE.label)
    register_job(
        SnapshotOperationKind.RESTORE_PREVIEW, restores, label=SnapshotOperationKind.RESTORE_PREVIEW.label
    )
