"""Task functions the tests enqueue; the worker imports them by path."""

from __future__ import annotations

from orgs.audit.models import AuditEntry
from orgs.tenancy import current_schema


def record_marker(marker: str) -> str:
    """Write a marker row in whatever schema the task runs in, and say which one that was."""
    AuditEntry.objects.create(actor_label="task", source="task", action="test.marker", object_repr=marker)
    return current_schema()
