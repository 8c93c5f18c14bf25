"""Directory entries of snapshots and restores: public-schema copies, one per (org, object id).

Data only. Entries are written by `snapshots.directory.services` alone, with the staff
directory's guarded upsert (`clusters.directory.store.upsert`): a row read from the org's schema
earlier than the stored one is ignored, so racing syncs never leave an older state behind.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models

from clusters.directory.models import REASON_LENGTH, DirectoryEntry
from snapshots.choices import RestoreMode, RestoreStatus, SnapshotStatus, StorageKind


class SnapshotEntryQuerySet(models.QuerySet["SnapshotEntry"]):
    """Reads of snapshot entries."""

    def listed(self) -> SnapshotEntryQuerySet:
        """The snapshots staff list: every one not deleted (deleted entries are kept for the record)."""
        return self.exclude(status=SnapshotStatus.DELETED)


class SnapshotEntry(DirectoryEntry):
    """One snapshot of one org, as staff list it: its cluster, where it is stored, status and sizes."""

    snapshot_id = models.BigIntegerField()
    uuid = models.UUIDField()
    name = models.CharField(max_length=100)
    # The cluster may be gone (snapshots outlive their clusters): its id then is null.
    cluster_id = models.BigIntegerField(null=True, blank=True)
    cluster_name = models.CharField(max_length=63, blank=True)
    location_id = models.BigIntegerField(null=True, blank=True)
    location_name = models.CharField(max_length=63, blank=True)
    location_kind = models.CharField(max_length=10, choices=StorageKind.choices, blank=True)
    status = models.CharField(max_length=10, choices=SnapshotStatus.choices)
    reason = models.CharField(max_length=REASON_LENGTH, blank=True)
    # The conditions that say something went wrong (status "False"), e.g. "Consistent: a list
    # had to be restarted": a completed snapshot may carry one, and staff must see it.
    warning = models.CharField(max_length=REASON_LENGTH, blank=True)
    has_failures = models.BooleanField(default=False, verbose_name="has failures")
    object_count = models.PositiveBigIntegerField(default=0)
    raw_bytes = models.PositiveBigIntegerField(default=0)
    stored_bytes = models.PositiveBigIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    kubernetes_version = models.CharField(max_length=40, blank=True)
    provider = models.CharField(max_length=40, blank=True)
    region = models.CharField(max_length=63, blank=True)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[Any] = SnapshotEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "snapshot"
        verbose_name_plural = "snapshots"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "snapshot_id"], name="snapshots_dir_snapshot_unique"),
        ]
        indexes = [
            models.Index(fields=["status"], name="snapshots_dir_snapshot_status"),
            models.Index(fields=["-created_at", "-id"], name="snapshots_dir_snapshot_recent"),
        ]

    def __str__(self) -> str:
        return self.name


class RestoreEntryQuerySet(models.QuerySet["RestoreEntry"]):
    """Reads of restore entries."""

    def listed(self) -> RestoreEntryQuerySet:
        """Every restore and preview staff may list (none is ever soft-deleted)."""
        return self.all()


class RestoreEntry(DirectoryEntry):
    """One restore (or preview) of one org: which snapshot into which cluster, status and counts."""

    restore_id = models.BigIntegerField()
    uuid = models.UUIDField()
    snapshot_id = models.BigIntegerField()
    snapshot_name = models.CharField(max_length=100)
    # The cluster the snapshot was taken of (by name: it may be gone).
    source_cluster_name = models.CharField(max_length=63, blank=True)
    target_id = models.BigIntegerField()
    target_name = models.CharField(max_length=63)
    mode = models.CharField(max_length=10, choices=RestoreMode.choices)
    status = models.CharField(max_length=10, choices=RestoreStatus.choices)
    reason = models.CharField(max_length=REASON_LENGTH, blank=True)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    conflict = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # Failed or partial, or any object failed or in conflict.
    has_failures = models.BooleanField(default=False, verbose_name="has failures")
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[Any] = RestoreEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "restore"
        verbose_name_plural = "restores"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "restore_id"], name="snapshots_dir_restore_unique"),
        ]
        indexes = [
            models.Index(fields=["status"], name="snapshots_dir_restore_status"),
            models.Index(fields=["-created_at", "-id"], name="snapshots_dir_restore_recent"),
            models.Index(fields=["org", "snapshot_id"], name="snapshots_dir_restore_snap"),
        ]

    def __str__(self) -> str:
        return f"{self.get_mode_display()} #{self.restore_id} of {self.snapshot_name}"
