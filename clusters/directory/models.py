"""Directory entries: public-schema copies of tenant rows, one per (org, object id).

Data only. Entries are written by `clusters.directory.services` alone, with one guarded upsert
each (`store.upsert`): a row read from the org's schema earlier than the stored one is ignored,
so syncs that race never leave an older state behind.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models

from clusters.choices import (
    ACTIVE_OPERATION_STATUSES,
    AppKind,
    AppOperationKind,
    AppStatus,
    ClusterStatus,
    OperationKind,
    OperationStatus,
    ProviderKind,
)

# Operations staff list: unfinished, or failed (retry them). Finished entries are kept (see
# OperationEntry) but not listed.
LISTED_OPERATION_STATUSES = frozenset({*ACTIVE_OPERATION_STATUSES, OperationStatus.FAILED})
REASON_LENGTH = 200
ERROR_LENGTH = 300
# Every kind the engine runs against a cluster: its own changes and its apps' rollouts.
OPERATION_KINDS = [*OperationKind.choices, *AppOperationKind.choices]


class DirectoryEntry(models.Model):
    """What every entry has: its org, and when its tenant rows were read (newer reads win)."""

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    # The database's clock when the tenant rows were read; the upsert keeps the newest read.
    observed_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        abstract = True


class ClusterEntryQuerySet(models.QuerySet["ClusterEntry"]):
    """Reads of cluster entries."""

    def listed(self) -> ClusterEntryQuerySet:
        """Every cluster staff may list (deleted ones included; the list filters them out)."""
        return self.all()


class ClusterEntry(DirectoryEntry):
    """One cluster of one org, as staff list it: status, provider, versions, nodes, active operation."""

    cluster_id = models.BigIntegerField()
    name = models.CharField(max_length=40)
    status = models.CharField(max_length=20, choices=ClusterStatus.choices)
    status_reason = models.CharField(max_length=REASON_LENGTH, blank=True)
    provider_kind = models.CharField(max_length=20, choices=ProviderKind.choices)
    provider_name = models.CharField(max_length=60)
    region = models.CharField(max_length=60, blank=True)
    version = models.CharField(max_length=20, blank=True, help_text="Desired Kubernetes version")
    observed_version = models.CharField(max_length=40, blank=True)
    nodes_ready = models.PositiveIntegerField(default=0)
    nodes_total = models.PositiveIntegerField(default=0, help_text="Nodes observed")
    nodes_desired = models.PositiveIntegerField(default=0, help_text="Sum of the pools' counts")
    # The cluster's queued or running operation (at most one). Both syncs write these columns,
    # under their own guard (operation_observed_at), so neither undoes the other's newer read.
    active_operation_id = models.BigIntegerField(null=True, blank=True)
    active_operation_kind = models.CharField(max_length=20, choices=OperationKind.choices, blank=True)
    active_operation_status = models.CharField(max_length=10, choices=OperationStatus.choices, blank=True)
    operation_observed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    objects: ClassVar[Any] = ClusterEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "cluster"
        verbose_name_plural = "clusters"
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "cluster_id"], name="directory_cluster_unique"),
        ]
        indexes = [
            models.Index(fields=["status"], name="directory_cluster_status"),
            models.Index(fields=["-updated_at", "-id"], name="directory_cluster_recent"),
        ]

    def __str__(self) -> str:
        return self.name


class OperationEntryQuerySet(models.QuerySet["OperationEntry"]):
    """Reads of operation entries."""

    def listed(self) -> OperationEntryQuerySet:
        """The operations staff list: unfinished or failed."""
        return self.filter(status__in=LISTED_OPERATION_STATUSES)


class OperationEntry(DirectoryEntry):
    """One operation of one org. Kept when it finishes (so a late, older sync cannot bring it back
    as running); staff list only the unfinished and failed ones."""

    operation_id = models.BigIntegerField()
    cluster_id = models.BigIntegerField()
    cluster_name = models.CharField(max_length=40)
    # As long as Operation.kind: a kind registered later must not fail the upsert.
    kind = models.CharField(max_length=40, choices=OPERATION_KINDS)
    status = models.CharField(max_length=10, choices=OperationStatus.choices)
    step = models.CharField(max_length=200, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=ERROR_LENGTH, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=0)
    requested_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[Any] = OperationEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "operation"
        verbose_name_plural = "operations"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "operation_id"], name="directory_operation_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="directory_operation_status"),
            models.Index(fields=["org", "cluster_id"], name="directory_operation_cluster"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.operation_id}"


class AppEntryQuerySet(models.QuerySet["AppEntry"]):
    """Reads of app entries."""

    def listed(self) -> AppEntryQuerySet:
        """The apps staff list: every one not deleted (deleted entries are kept for the record)."""
        return self.exclude(status=AppStatus.DELETED)


class AppEntry(DirectoryEntry):
    """One app of one org, as staff list it: where it runs, its image, status and replicas."""

    app_id = models.BigIntegerField()
    cluster_id = models.BigIntegerField()
    cluster_name = models.CharField(max_length=40)
    namespace = models.CharField(max_length=63)
    name = models.CharField(max_length=63)
    # An image reference is at most 2048 characters (clusters.workloads.spec).
    image = models.CharField(max_length=2048, blank=True)
    kind = models.CharField(max_length=20, choices=AppKind.choices)
    status = models.CharField(max_length=20, choices=AppStatus.choices)
    status_reason = models.CharField(max_length=REASON_LENGTH, blank=True)
    revision = models.PositiveIntegerField(default=0)
    desired_replicas = models.PositiveIntegerField(default=0)
    ready_replicas = models.PositiveIntegerField(default=0)
    available_replicas = models.PositiveIntegerField(default=0)
    adopted = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[Any] = AppEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "app"
        verbose_name_plural = "apps"
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "app_id"], name="directory_app_unique"),
        ]
        indexes = [
            models.Index(fields=["status"], name="directory_app_status"),
            models.Index(fields=["-updated_at", "-id"], name="directory_app_recent"),
            models.Index(fields=["org", "cluster_id"], name="directory_app_cluster"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"
