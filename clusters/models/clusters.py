"""Provider accounts, clusters, node pools, observed nodes, cloud resources, operations, events.

Data and invariants only: nothing here calls a cloud or a Kubernetes API.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from clusters.choices import (
    CLUSTER_TRANSITIONS,
    ClusterStatus,
    EventLevel,
    OperationStatus,
    ProviderKind,
    ResourceState,
)
from orgs.crypto import EncryptedTextField, Secret
from orgs.exceptions import InvalidTransition


class ProviderAccount(models.Model):
    """An org's connection to a provider, with its credentials encrypted at rest."""

    name = models.CharField(max_length=60, unique=True)
    kind = models.CharField(max_length=20, choices=ProviderKind.choices)
    # JSON of the provider's secret fields (keys, tokens); never returned after creation.
    credentials = EncryptedTextField(blank=True, default="")
    # Non-secret settings (endpoint, project, default region...).
    settings = models.JSONField(default=dict, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def secret_values(self) -> dict[str, str]:
        """The decrypted credentials, for the provider driver only."""
        value = self.credentials
        raw = value.reveal() if isinstance(value, Secret) else str(value or "")
        return dict(json.loads(raw)) if raw else {}


class Cluster(models.Model):
    """A Kubernetes cluster: the desired spec (version, pools) and what was last observed."""

    name = models.CharField(max_length=40)
    provider = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="clusters")
    region = models.CharField(max_length=60, blank=True)
    version = models.CharField(max_length=20, help_text="Desired Kubernetes version")
    status = models.CharField(max_length=20, choices=ClusterStatus.choices, default=ClusterStatus.PENDING)
    status_reason = models.TextField(blank=True)
    conditions = models.JSONField(default=list, blank=True)
    # The name of the cluster at the provider (a local cluster's runtime name, a cloud tag).
    external_name = models.CharField(max_length=63, unique=True)
    kubeconfig = EncryptedTextField(blank=True, default="")
    bootstrap_secret = EncryptedTextField(blank=True, default="")
    api_endpoint = models.CharField(max_length=255, blank=True)
    observed_version = models.CharField(max_length=40, blank=True)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # A name is taken while the cluster exists; deleted clusters stay for the record.
            models.UniqueConstraint(
                fields=["name"], condition=Q(deleted_at__isnull=True), name="cluster_name_unique_live"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_imported(self) -> bool:
        """Imported clusters are observed, never provisioned or destroyed by Flotilla."""
        return self.provider.kind == ProviderKind.EXISTING

    def kubeconfig_text(self) -> str:
        """The decrypted kubeconfig ('' before the cluster has one)."""
        value = self.kubeconfig
        return value.reveal() if isinstance(value, Secret) else str(value or "")

    def transition_to(self, status: str, reason: str = "") -> tuple[str, str]:
        """Move to `status` if the transition table allows it; returns (old, new). Not saved."""
        old = self.status
        if status != old and status not in CLUSTER_TRANSITIONS[old]:
            raise InvalidTransition(
                f"Cluster {self.name} cannot go from {ClusterStatus(old).label} to "
                f"{ClusterStatus(status).label}."
            )
        self.status = status
        self.status_reason = reason
        return old, status


class NodePool(models.Model):
    """A group of nodes of one size, with labels and taints; `count` is the desired size."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="pools")
    name = models.CharField(max_length=30)
    size = models.CharField(max_length=60)
    count = models.PositiveIntegerField()
    labels = models.JSONField(default=dict, blank=True)
    taints = models.JSONField(default=list, blank=True)
    # Set when removal is asked for; the reconcile loop drains the pool, then deletes the row.
    removing = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["cluster_id", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="pool_name_unique")]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.name}" if self.cluster_id else self.name


class Node(models.Model):
    """A node as last observed through the cluster's API (refreshed, never desired)."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="nodes")
    pool_name = models.CharField(max_length=30, blank=True)
    name = models.CharField(max_length=253)
    ready = models.BooleanField(default=False)
    kubelet_version = models.CharField(max_length=40, blank=True)
    cpu = models.CharField(max_length=20, blank=True)
    memory = models.CharField(max_length=20, blank=True)
    internal_ip = models.CharField(max_length=45, blank=True)
    observed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["cluster_id", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="node_name_unique")]

    def __str__(self) -> str:
        return self.name


class CloudResource(models.Model):
    """Something a provider made, recorded before it is created, against the operation's subject.

    `cluster` is the cluster it belongs to (deleting the cluster finds every resource made for it,
    whichever app made it); `subject_type`/`subject_id` say what it was made for (the cluster
    itself, a load balancer, a volume...). `data` holds the kind's typed record
    (clusters.providers.records), never free-form keys.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="resources")
    subject_type = models.CharField(max_length=40, default="cluster")
    subject_id = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=30)
    name = models.CharField(max_length=120)
    pool_name = models.CharField(max_length=30, blank=True)
    provider_id = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=10, choices=ResourceState.choices, default=ResourceState.PLANNED)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster_id", "kind", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "subject_type", "subject_id", "kind", "name"],
                condition=~Q(state=ResourceState.DELETED),
                name="resource_unique_live",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class Operation(models.Model):
    """One long job (a cluster change, later a rollout or a snapshot) and its progress.

    The operations engine (clusters.engine) owns `status` and the claim fields: it moves them only
    through its guarded transition (clusters.engine.machine.move), which writes an
    OperationTransition row. `cluster` is the cluster the job runs against (its timeline gets the
    job's events); `subject_type`/`subject_id` name what the job works on (the cluster itself for
    cluster changes); `kind` is one registered with clusters.engine.register_job.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="operations")
    subject_type = models.CharField(max_length=40, default="cluster")
    subject_id = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=OperationStatus.choices, default=OperationStatus.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    step = models.CharField(max_length=200, blank=True)
    step_started_at = models.DateTimeField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # The worker running it writes a fresh heartbeat between steps; a stale one means it died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # The job's own resumable state between passes (e.g. how far a snapshot got).
    state = models.JSONField(default=dict, blank=True)
    requested_by = models.CharField(max_length=254, blank=True)
    idempotency_key = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="operation_due"),
            models.Index(fields=["subject_type", "subject_id", "status"], name="operation_subject"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"], condition=~Q(idempotency_key=""), name="operation_idem_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_active(self) -> bool:
        """Queued or running."""
        return self.status in (OperationStatus.QUEUED, OperationStatus.RUNNING)

    def get_kind_display(self) -> str:
        """The kind's label, from the engine's registry of job kinds."""
        from clusters.engine.jobs import label_of

        return label_of(self.kind)


class OperationTransition(models.Model):
    """One move of an operation's status, written by the engine's guarded transition (append-only)."""

    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=10, choices=OperationStatus.choices)
    to_status = models.CharField(max_length=10, choices=OperationStatus.choices)
    reason = models.CharField(max_length=200, blank=True)
    worker = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["operation_id", "at", "id"]

    def __str__(self) -> str:
        return f"#{self.operation_id}: {self.from_status} → {self.to_status}"


class ClusterEvent(models.Model):
    """One line of a cluster's timeline."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="events")
    operation = models.ForeignKey(
        Operation, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    # The app the line is about (its rollouts, its observed changes); the cluster's timeline shows it too.
    app = models.ForeignKey(
        "clusters.App", on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    level = models.CharField(max_length=10, choices=EventLevel.choices, default=EventLevel.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.message[:80]

    def as_dict(self) -> dict[str, Any]:
        """What the timeline shows and the websocket sends."""
        return {
            "id": self.pk,
            "at": self.created_at.isoformat(),
            "level": self.level,
            "message": self.message,
            "operation": self.operation_id,
            "app": self.app_id,
        }
