"""Restores and previews: a restore's page with its live status and its per-object report, and
the "Restore now" of a completed preview."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from clusters.views.common import actor_of, is_fragment, not_found_is_404, org_redirect, org_url
from orgs.exceptions import FlotillaError, NotFound
from orgs.feedback import report_error
from snapshots import selectors
from snapshots.choices import ItemAction, ItemResult, RestoreMode, RestoreStatus
from snapshots.models import Restore, RestoreItem
from snapshots.permissions import Action, can
from snapshots.services import restores as restore_services
from snapshots.views.common import operation_of, refuse_unless, refused_by_service

ITEMS_PER_PAGE = 100
# The counts of a report, in the order they are shown: the words of a restore, then of a preview.
COUNTS = (
    ("created", "created", "to create"),
    ("updated", "updated", "to update"),
    ("unchanged", "unchanged", "unchanged"),
    ("skipped", "skipped", "to skip"),
    ("conflict", "in conflict", "in conflict"),
    ("failed", "failed", "failed"),
)

DIFF_SHOWN = 20
VALUE_SHOWN = 200


def _value(value: Any) -> str:
    """A field's value in a diff: text as it is, anything else as compact JSON; absent is "—"."""
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= VALUE_SHOWN else text[: VALUE_SHOWN - 1] + "…"


@dataclass
class ItemRow:
    """One object of a report, with its field diff as text."""

    item: RestoreItem
    changes: list[tuple[str, str, str]]
    more: int


def item_rows(items: list[RestoreItem]) -> list[ItemRow]:
    """Rows of a report's page (the first changes of each object's diff)."""
    rows = []
    for item in items:
        diff = [c for c in (item.diff or []) if isinstance(c, dict)]
        changes = [(str(c.get("path", "")), _value(c.get("before")), _value(c.get("after"))) for c in diff]
        rows.append(ItemRow(item, changes[:DIFF_SHOWN], max(0, len(changes) - DIFF_SHOWN)))
    return rows


def _live_context(request: HttpRequest, restore: Restore) -> dict[str, Any]:
    actor = actor_of(request)
    operation = operation_of(restore)
    counts = restore.counts or {}
    is_preview = restore.mode == RestoreMode.PREVIEW
    confirmed = (
        selectors.list_restores(actor).filter(preview_id=restore.pk).first()
        if is_preview and restore.status == RestoreStatus.COMPLETED
        else None
    )
    return {
        "restore": restore,
        "snapshot": restore.snapshot,
        "is_preview": is_preview,
        "operation": operation,
        "active": operation if operation is not None and operation.is_active else None,
        "counts": [
            (key, planned if is_preview else done, int(counts.get(key, 0) or 0))
            for key, done, planned in COUNTS
        ],
        "total": sum(int(v or 0) for v in counts.values()),
        "confirmed": confirmed,
        "can_confirm": is_preview
        and restore.status == RestoreStatus.COMPLETED
        and confirmed is None
        and can(actor, Action.RESTORE),
    }


def _items_context(request: HttpRequest, restore: Restore) -> dict[str, Any]:
    actor = actor_of(request)
    items = selectors.restore_items(actor, restore)
    result = request.GET.get("result", "")
    action = request.GET.get("action", "")
    if result in ItemResult.values:
        items = items.filter(result=result)
    else:
        result = ""
    if action in ItemAction.values:
        items = items.filter(action=action)
    else:
        action = ""
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    filters = {k: v for k, v in (("result", result), ("action", action)) if v}
    query = dict(filters)
    if page.number > 1:
        query["page"] = str(page.number)
    return {
        "restore": restore,
        "items": item_rows(list(page.object_list)),
        "items_page": page,
        "result": result,
        "action": action,
        "results": ItemResult.choices,
        "actions": ItemAction.choices,
        "filters": urlencode(filters),
        "items_query": urlencode(query),
    }


@require_GET
@not_found_is_404
def restore_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A restore or a preview: live status and counts, its per-object report, and on a completed
    preview the button that starts the real restore."""
    restore = selectors.get_restore(actor_of(request), pk)
    context = {**_live_context(request, restore), **_items_context(request, restore)}
    return render(request, "snapshots/restore_detail.html", context)


@require_GET
def restore_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of a restore's page (htmx fragment)."""
    try:
        restore = selectors.get_restore(actor_of(request), pk)
    except NotFound:
        if not is_fragment(request):
            return render(request, "orgs/not_found.html", status=404)
        response = HttpResponse("")
        response["HX-Redirect"] = org_url(request, "snapshots:list")
        return response
    return render(request, "snapshots/partials/restore_live.html", _live_context(request, restore))


@require_GET
@not_found_is_404
def restore_items(request: HttpRequest, pk: int) -> HttpResponse:
    """A page of a restore's report, filtered by result and action (htmx fragment)."""
    restore = selectors.get_restore(actor_of(request), pk)
    return render(request, "snapshots/partials/restore_items.html", _items_context(request, restore))


@require_POST
@not_found_is_404
def restore_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    """Start the restore a completed preview showed (same snapshot, target and options)."""
    actor = actor_of(request)
    preview = selectors.get_restore(actor, pk)
    back = org_url(request, "snapshots:restore_detail", pk=preview.pk)
    denied = refuse_unless(
        request, can(actor, Action.RESTORE), "Restoring snapshots", Action.RESTORE, back, "the preview"
    )
    if denied is not None:
        return denied
    try:
        # One restore per preview: a double click (or a second tab) gets the first one back.
        requested = restore_services.confirm_preview(
            actor, preview, idempotency_key=f"portal:confirm:{preview.uuid}"
        )
    except FlotillaError as error:
        if error.status == 403:
            return refused_by_service(request, error, back, "the preview")
        report_error(request, error)
        return org_redirect(request, "snapshots:restore_detail", pk=preview.pk)
    restore = requested.restore
    messages.success(
        request, f"Restoring {restore.snapshot.name} into {restore.target.name}: the report fills in below."
    )
    return org_redirect(request, "snapshots:restore_detail", pk=restore.pk)
