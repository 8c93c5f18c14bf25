"""The audit entry: who did what to which object, from where, with a before/after summary."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from orgs.choices import ActorSource


class AuditEntry(models.Model):
    """One mutating action; append-only (a trigger rejects UPDATE and DELETE)."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Actors are copied, not referenced: the log outlives users, tokens and memberships.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=254)
    token_prefix = models.CharField(max_length=12, blank=True)
    source = models.CharField(max_length=10, choices=ActorSource.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    org_slug = models.CharField(max_length=40, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("audit entries are append-only")
