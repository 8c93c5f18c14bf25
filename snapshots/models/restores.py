"""Restores (and previews) of snapshots into clusters, and their per-object reports."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from clusters.models import Cluster
from orgs.exceptions import InvalidTransition
from snapshots.choices import RESTORE_TRANSITIONS, ItemAction, ItemResult, RestoreMode, RestoreStatus
from snapshots.models.snapshots import Snapshot

EMPTY_COUNTS = {"created": 0, "updated": 0, "unchanged": 0, "skipped": 0, "conflict": 0, "failed": 0}


def empty_counts() -> dict[str, int]:
    """A fresh counter of a report's outcomes."""
    return dict(EMPTY_COUNTS)


class Restore(models.Model):
    """One restore of a snapshot into a cluster, or a preview of one (server-side dry-run)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="restores")
    target = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="restores")
    mode = models.CharField(max_length=10, choices=RestoreMode.choices, default=RestoreMode.RESTORE)
    status = models.CharField(max_length=10, choices=RestoreStatus.choices, default=RestoreStatus.PENDING)
    reason = models.TextField(blank=True)
    options = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=empty_counts, blank=True)
    # The preview a restore was confirmed from, if any.
    preview = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target", "status"], name="restore_target_status")]

    def __str__(self) -> str:
        return f"{self.get_mode_display()} #{self.pk} of {self.snapshot_id}"

    def transition_to(self, status: str, reason: str = "") -> tuple[str, str]:
        """Move to `status` if the transition table allows it; returns (old, new). Not saved."""
        old = self.status
        if status != old and status not in RESTORE_TRANSITIONS[old]:
            raise InvalidTransition(
                f"Restore #{self.pk} cannot go from {RestoreStatus(old).label} "
                f"to {RestoreStatus(status).label}."
            )
        self.status = status
        self.reason = reason
        return old, status


class RestoreItem(models.Model):
    """One object of a restore's report: what was (or would be) done, and the API server's word."""

    restore = models.ForeignKey(Restore, on_delete=models.CASCADE, related_name="items")
    # The object's position in the restore's order: a resumed restore never records it twice.
    seq = models.PositiveIntegerField()
    api_version = models.CharField(max_length=120)
    kind = models.CharField(max_length=100)
    namespace = models.CharField(max_length=63, blank=True)
    source_namespace = models.CharField(max_length=63, blank=True)
    name = models.CharField(max_length=253)
    action = models.CharField(max_length=10, choices=ItemAction.choices)
    result = models.CharField(max_length=10, choices=ItemResult.choices)
    message = models.TextField(blank=True)
    diff = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["restore_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["restore", "seq"], name="restore_item_seq")]
        indexes = [models.Index(fields=["restore", "result"], name="restore_item_result")]

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}: {self.action}"
