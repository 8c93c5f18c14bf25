"""What the snapshots app's portal views share: rows with their operation, and refusals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from clusters.models import Operation
from clusters.views.common import needs_role
from orgs.exceptions import FlotillaError
from snapshots import selectors
from snapshots.models import Restore, Snapshot


@dataclass
class Row:
    """A snapshot or restore in a table, with its newest operation."""

    obj: Any
    operation: Operation | None

    @property
    def active(self) -> Operation | None:
        """The operation still running (None once it finished)."""
        return self.operation if self.operation is not None and self.operation.is_active else None


def rows_of(objects: Sequence[Snapshot] | Sequence[Restore]) -> list[Row]:
    """Rows of a table: one more query for the page, whatever its length."""
    operations = selectors.operations_by_subject([getattr(o, "last_operation_id", None) for o in objects])
    return [Row(o, operations.get(o.pk)) for o in objects]


def operation_of(obj: Snapshot | Restore) -> Operation | None:
    """The newest operation of one snapshot or restore."""
    return selectors.operations_by_subject([getattr(obj, "last_operation_id", None)]).get(obj.pk)


def refused(request: HttpRequest, message: str, back: str = "", back_label: str = "") -> HttpResponse:
    """A write the member's role does not allow (no button offered it): 403 with the reason."""
    messages.error(request, message)
    return render(request, "snapshots/refused.html", {"back": back, "back_label": back_label}, status=403)


def refuse_unless(
    request: HttpRequest, allowed: bool, what: str, action: StrEnum, back: str = "", back_label: str = ""
) -> HttpResponse | None:
    """A 403 page when the role does not allow `action`, else None."""
    if allowed:
        return None
    return refused(request, needs_role(what, action), back, back_label)


def refused_by_service(
    request: HttpRequest, error: FlotillaError, back: str = "", back_label: str = ""
) -> HttpResponse:
    """The 403 page of a service's PermissionDenied."""
    return refused(request, error.message, back, back_label)
