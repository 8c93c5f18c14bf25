"""Apps (containerised workloads) deployed to clusters, and their revisions.

Data and invariants only: rendering, rollout and observation live in clusters.workloads and
clusters.services.apps. An app's secret variables are encrypted at rest (orgs.crypto) and never
leave the server except as the Kubernetes Secret written into its cluster.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from clusters.choices import APP_TRANSITIONS, AppKind, AppStatus, RevisionKind
from clusters.models.clusters import Cluster
from orgs.crypto import EncryptedTextField, Secret
from orgs.exceptions import InvalidTransition


def _revealed(value: Any) -> dict[str, str]:
    raw = value.reveal() if isinstance(value, Secret) else str(value or "")
    return dict(json.loads(raw)) if raw else {}


class App(models.Model):
    """An app on one cluster and namespace: its desired spec (the current revision's) and what the
    cluster last said about it (replica counts, refreshed by rollouts and observation)."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="apps")
    namespace = models.CharField(max_length=63, default="default")
    name = models.CharField(max_length=63)
    kind = models.CharField(max_length=20, choices=AppKind.choices, default=AppKind.DEPLOYMENT)
    status = models.CharField(max_length=20, choices=AppStatus.choices, default=AppStatus.PENDING)
    status_reason = models.TextField(blank=True)
    # clusters.workloads.spec.AppSpec.to_dict() of the current revision (secret names only).
    spec = models.JSONField(default=dict)
    # The selector of the workload's pods: {flotilla.dev/app: name} for apps Flotilla created,
    # the workload's own (immutable in Kubernetes) for adopted ones.
    selector = models.JSONField(default=dict)
    # JSON {name: value} of the secret variables, encrypted; written to the cluster as a Secret.
    secrets = EncryptedTextField(blank=True, default="")
    # The revision whose secrets the pods run with (a pod-template annotation, never a digest).
    secrets_revision = models.PositiveIntegerField(default=0)
    revision = models.PositiveIntegerField(default=0)
    adopted = models.BooleanField(default=False)
    # Flotilla created the namespace for this app (it goes with the last app that uses it).
    owns_namespace = models.BooleanField(default=False)
    # Observed (cached) state: list pages and the API read these, never the cluster per row.
    desired_replicas = models.PositiveIntegerField(default=0)
    updated_replicas = models.PositiveIntegerField(default=0)
    ready_replicas = models.PositiveIntegerField(default=0)
    available_replicas = models.PositiveIntegerField(default=0)
    observed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cluster_id", "namespace", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "namespace", "name"],
                condition=Q(deleted_at__isnull=True),
                name="app_name_unique_live",
            )
        ]
        indexes = [models.Index(fields=["status"], name="app_status")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def secret_values(self) -> dict[str, str]:
        """The decrypted secret variables, for rendering the cluster's Secret only."""
        return _revealed(self.secrets)

    @property
    def secret_keys(self) -> list[str]:
        """The names of the secret variables (what the API and portal show)."""
        return list((self.spec or {}).get("secret_keys") or [])

    @property
    def image(self) -> str:
        """The image of the current revision."""
        return str((self.spec or {}).get("image") or "")

    def transition_to(self, status: str, reason: str = "") -> tuple[str, str]:
        """Move to `status` if the transition table allows it; returns (old, new). Not saved."""
        old = self.status
        if status != old and status not in APP_TRANSITIONS[old]:
            raise InvalidTransition(
                f"App {self.name} cannot go from {AppStatus(old).label} to {AppStatus(status).label}."
            )
        self.status = status
        self.status_reason = reason
        return old, status


class AppRevision(models.Model):
    """One recorded change of an app: the whole spec it asked for, what changed, who, when.

    Revisions are append-only; a roll back records a new revision with an earlier one's spec."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=RevisionKind.choices)
    spec = models.JSONField(default=dict)
    # The secret variables this revision runs with (encrypted), so a roll back restores them too.
    secrets = EncryptedTextField(blank=True, default="")
    secrets_revision = models.PositiveIntegerField(default=0)
    changes = models.JSONField(default=list, blank=True)
    rolled_back_to = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["app_id", "-number"]
        constraints = [models.UniqueConstraint(fields=["app", "number"], name="app_revision_unique")]

    def __str__(self) -> str:
        return f"{self.app_id} r{self.number}"

    def secret_values(self) -> dict[str, str]:
        """This revision's decrypted secret variables (for a roll back only)."""
        return _revealed(self.secrets)
