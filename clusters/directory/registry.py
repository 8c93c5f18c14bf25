"""Which staff lists the admin index shows, in place of each tenant app's "not available" line.

A tenant app's models live in every org's schema, so the admin index (public schema) cannot list
them. An app that keeps directory entries registers a list for them from its ready(); the index
shows each with a link and counts by status (one query per list, whatever the number of orgs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.db import models
from django.db.models import Count
from django.urls import reverse

if TYPE_CHECKING:
    from orgs.models import Organization


@dataclass(frozen=True)
class DirectoryList:
    """One staff list across orgs: an entry model (with a `status` field and a `listed()` manager)."""

    app_label: str  # the tenant app it stands for on the admin index
    label: str
    model: type[models.Model]
    # Refills an org's entries from its schema (`rebuild_directory`); returns how many rows it read.
    rebuild: Callable[[Organization], int] | None = None

    def url(self) -> str:
        """The list's admin changelist."""
        meta = self.model._meta
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")

    def counts(self) -> list[tuple[str, str, int]]:
        """(status, label, count) of the rows staff list, in the order of the status choices."""
        listed = self.model.objects.listed()  # type: ignore[attr-defined]
        found = dict(listed.values_list("status").annotate(n=Count("pk")).order_by())
        status = cast("models.Field[Any, Any]", self.model._meta.get_field("status"))
        choices = status.choices or []
        return [(str(value), str(label), found[value]) for value, label in choices if value in found]


_lists: list[DirectoryList] = []


def register_list(entry: DirectoryList) -> None:
    """Called by an app's ready() for each entry model it keeps in step."""
    if entry not in _lists:
        _lists.append(entry)


def lists_for(app_label: str) -> list[DirectoryList]:
    """The staff lists that stand for a tenant app on the admin index."""
    return [entry for entry in _lists if entry.app_label == app_label]


def rebuilders() -> list[Callable[[Organization], int]]:
    """Each registered rebuild function once (a function may refill several entry models)."""
    found: list[Callable[[Organization], int]] = []
    for entry in _lists:
        if entry.rebuild is not None and entry.rebuild not in found:
            found.append(entry.rebuild)
    return found


def directory_app_labels() -> set[str]:
    """Apps whose own models are these lists (shown under their tenant app instead)."""
    return {entry.model._meta.app_label for entry in _lists}
