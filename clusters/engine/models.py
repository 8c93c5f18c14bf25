"""The dispatch index: one row per unfinished operation of any org, in the public schema."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Dispatch(models.Model):
    """When an org's operation is next due, and whether a task for it is already queued.

    The row is written in the same transaction as the operation's own state (the org's schema
    and the public schema are one database), so the dispatcher never queues an operation twice:
    it takes a due row with `queued_at` empty under a row lock and sets `queued_at` as it queues.
    """

    schema_name = models.CharField(max_length=63)
    operation_id = models.BigIntegerField()
    due_at = models.DateTimeField(default=timezone.now)
    # Set when a task was queued for this due time; cleared when the operation waits again.
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["schema_name", "operation_id"], name="dispatch_one_per_operation")
        ]
        indexes = [models.Index(fields=["queued_at", "due_at"], name="dispatch_due")]

    def __str__(self) -> str:
        return f"{self.schema_name}#{self.operation_id}"
