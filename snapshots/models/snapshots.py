"""Snapshots of clusters: what was taken, where it is stored, and what it holds."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from clusters.models import Cluster
from orgs.exceptions import InvalidTransition
from snapshots.choices import SNAPSHOT_TRANSITIONS, SnapshotStatus
from snapshots.models.storage import StorageLocation


class Snapshot(models.Model):
    """One snapshot of a cluster (or a selection of it), its chunks in a storage location.

    The rows outlive the cluster (soft-deleted clusters keep their id; `cluster_name` is kept for
    the day the row goes). Counts and sizes are copied from the manifest when it completes, so
    lists never read storage.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    cluster = models.ForeignKey(Cluster, on_delete=models.SET_NULL, null=True, related_name="snapshots")
    cluster_name = models.CharField(max_length=63, blank=True)
    # Deleting a location is refused while it holds live snapshots; deleted ones keep their rows.
    location = models.ForeignKey(
        StorageLocation, on_delete=models.SET_NULL, null=True, related_name="snapshots"
    )
    status = models.CharField(max_length=10, choices=SnapshotStatus.choices, default=SnapshotStatus.PENDING)
    reason = models.TextField(blank=True)
    selection = models.JSONField(default=dict, blank=True)
    # [{type, status, reason, message}]: e.g. Consistent=False when a list had to be resumed.
    conditions = models.JSONField(default=list, blank=True)
    object_count = models.PositiveBigIntegerField(default=0)
    raw_bytes = models.PositiveBigIntegerField(default=0)
    stored_bytes = models.PositiveBigIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    kinds = models.JSONField(default=dict, blank=True)
    kubernetes_version = models.CharField(max_length=40, blank=True)
    provider = models.CharField(max_length=40, blank=True)
    region = models.CharField(max_length=63, blank=True)
    format_version = models.PositiveSmallIntegerField(default=0)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(deleted_at__isnull=True), name="snapshot_name_live"
            )
        ]
        indexes = [models.Index(fields=["cluster", "status"], name="snapshot_cluster_status")]

    def __str__(self) -> str:
        return self.name

    @property
    def storage_prefix(self) -> str:
        """Where its objects are, relative to the org's area of the location."""
        return f"snapshots/{self.uuid}"

    def transition_to(self, status: str, reason: str = "") -> tuple[str, str]:
        """Move to `status` if the transition table allows it; returns (old, new). Not saved."""
        old = self.status
        if status != old and status not in SNAPSHOT_TRANSITIONS[old]:
            raise InvalidTransition(
                f"Snapshot {self.name} cannot go from {SnapshotStatus(old).label} "
                f"to {SnapshotStatus(status).label}."
            )
        self.status = status
        self.reason = reason
        return old, status
