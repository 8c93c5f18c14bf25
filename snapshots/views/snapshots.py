"""Snapshots: the org-wide list, a cluster's Snapshots section and its form, a snapshot's page
with its live part, its deletion, and the restore form (which starts a preview).

Lists read the counts and sizes kept on each snapshot (storage is never read). Live parts
re-fetch themselves when portal.js relays a `snapshot.changed` (or `restore.changed`) event.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clusters import selectors as cluster_selectors
from clusters.choices import LIVE_STATUSES
from clusters.models import Cluster
from clusters.views.common import actor_of, is_fragment, needs_role, not_found_is_404, org_redirect, org_url
from orgs.actors import Actor
from orgs.exceptions import FlotillaError, NotFound, ValidationFailed
from orgs.feedback import report_error
from snapshots import selectors
from snapshots.choices import RestoreMode, SnapshotStatus
from snapshots.forms import RestoreForm, SnapshotForm
from snapshots.models import Snapshot
from snapshots.permissions import Action, can
from snapshots.services import restores as restore_services
from snapshots.services import snapshots as snapshot_services
from snapshots.views.common import operation_of, refuse_unless, refused_by_service, rows_of

SNAPSHOTS_PER_PAGE = 50
CLUSTER_SECTION_ROWS = 20
RESTORES_SHOWN = 50
# Finished one way or another: a deletion may be asked (again, for one the storage refused).
DELETABLE = (
    SnapshotStatus.COMPLETED,
    SnapshotStatus.FAILED,
    SnapshotStatus.CANCELLED,
    SnapshotStatus.DELETING,
)

# --- Lists -----------------------------------------------------------------------------------


def _list_context(request: HttpRequest) -> dict[str, Any]:
    actor = actor_of(request)
    clusters = list(cluster_selectors.list_clusters(actor))
    chosen = next((c for c in clusters if str(c.pk) == request.GET.get("cluster", "")), None)
    snapshots = selectors.list_snapshots(actor)
    if chosen is not None:
        snapshots = snapshots.filter(cluster_id=chosen.pk)
    page = Paginator(snapshots, SNAPSHOTS_PER_PAGE).get_page(request.GET.get("page"))
    query = {"cluster": str(chosen.pk)} if chosen else {}
    if page.number > 1:
        query["page"] = str(page.number)
    return {
        "rows": rows_of(list(page.object_list)),
        "page": page,
        "clusters": clusters,
        # A snapshot outlives its cluster: only a live one's page is linked.
        "live_cluster_ids": {c.pk for c in clusters},
        "chosen": chosen,
        "query": urlencode(query),
    }


@require_GET
def snapshot_list(request: HttpRequest) -> HttpResponse:
    """Every snapshot of the org (filtered by cluster), newest first, refreshed live."""
    return render(request, "snapshots/list.html", _list_context(request))


@require_GET
def snapshot_table(request: HttpRequest) -> HttpResponse:
    """The list's table alone (htmx fragment)."""
    return render(request, "snapshots/partials/table.html", _list_context(request))


# --- A cluster's section and the snapshot form -----------------------------------------------


def _snapshot_form(actor: Actor, data: Any = None) -> SnapshotForm:
    locations = list(selectors.list_locations(actor))
    return SnapshotForm(data, locations=locations, initial={"request_id": secrets.token_urlsafe(16)})


def _cluster_rows_context(request: HttpRequest, cluster: Cluster) -> dict[str, Any]:
    actor = actor_of(request)
    snapshots = list(
        selectors.list_snapshots(actor).filter(cluster_id=cluster.pk)[: CLUSTER_SECTION_ROWS + 1]
    )
    return {
        "cluster": cluster,
        "rows": rows_of(snapshots[:CLUSTER_SECTION_ROWS]),
        "more": len(snapshots) > CLUSTER_SECTION_ROWS,
        "hide_cluster": True,
    }


@require_GET
@not_found_is_404
def cluster_snapshots(request: HttpRequest, pk: int) -> HttpResponse:
    """The Snapshots section of a cluster's page: its snapshots and the form to take one (htmx fragment)."""
    actor = actor_of(request)
    cluster = cluster_selectors.get_cluster(actor, pk)
    can_create = can(actor, Action.SNAPSHOT_CREATE) and cluster.status in LIVE_STATUSES
    context = {
        **_cluster_rows_context(request, cluster),
        "can_create": can_create,
        "form": _snapshot_form(actor) if can_create else None,
    }
    return render(request, "snapshots/partials/cluster_section.html", context)


@require_GET
@not_found_is_404
def cluster_table(request: HttpRequest, pk: int) -> HttpResponse:
    """The table of a cluster's section alone (htmx fragment, refreshed on snapshot events)."""
    cluster = cluster_selectors.get_cluster(actor_of(request), pk)
    return render(request, "snapshots/partials/cluster_table.html", _cluster_rows_context(request, cluster))


def _idempotency_key(request_id: str) -> str:
    # A double click replays the first request; a page that failed shows a fresh id next time.
    return f"portal:{request_id}:snapshot" if request_id else ""


@require_http_methods(["GET", "POST"])
@not_found_is_404
def snapshot_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Take a snapshot of a cluster (or a selection of it) into one of the org's storage locations."""
    actor = actor_of(request)
    cluster = cluster_selectors.get_cluster(actor, pk)
    back = org_url(request, "clusters:detail", pk=cluster.pk)
    if request.method == "GET" and not can(actor, Action.SNAPSHOT_CREATE):
        messages.error(request, needs_role("Taking snapshots", Action.SNAPSHOT_CREATE))
        return org_redirect(request, "clusters:detail", pk=cluster.pk)
    denied = refuse_unless(
        request,
        can(actor, Action.SNAPSHOT_CREATE),
        "Taking snapshots",
        Action.SNAPSHOT_CREATE,
        back,
        cluster.name,
    )
    if denied is not None:
        return denied
    form = _snapshot_form(actor, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            cleaned = form.cleaned_data
            location = None
            try:
                if cleaned.get("location"):
                    location = selectors.get_location(actor, int(cleaned["location"]))
                requested = snapshot_services.create_snapshot(
                    actor,
                    cluster,
                    name=cleaned.get("name") or "",
                    location=location,
                    selection=form.selection(),
                    idempotency_key=_idempotency_key(request.POST.get("request_id", "")[:32]),
                )
            except NotFound as error:
                form.add_error("location", error.message)
                status = 400
            except FlotillaError as error:
                if error.status == 403:
                    return refused_by_service(request, error, back, cluster.name)
                if not form.add_service_errors(error.fields):
                    messages.error(request, error.message)
                status = error.status
            else:
                snapshot = requested.snapshot
                messages.success(
                    request, f"Taking snapshot {snapshot.name} of {cluster.name}: follow it below."
                )
                return org_redirect(request, "snapshots:detail", pk=snapshot.pk)
    return render(request, "snapshots/create.html", {"form": form, "cluster": cluster}, status=status)


# --- One snapshot ----------------------------------------------------------------------------


def _live_clusters(actor: Actor) -> list[Cluster]:
    return list(cluster_selectors.list_clusters(actor).filter(status__in=LIVE_STATUSES))


def _restore_form(actor: Actor, snapshot: Snapshot, data: Any = None) -> RestoreForm:
    clusters = _live_clusters(actor)
    initial: dict[str, Any] = {"request_id": secrets.token_urlsafe(16)}
    if any(c.pk == snapshot.cluster_id for c in clusters):
        initial["target"] = str(snapshot.cluster_id)
    return RestoreForm(data, clusters=clusters, initial=initial)


def _selection_text(selection: dict[str, Any]) -> list[tuple[str, str]]:
    """A selection's keys that narrow it, as words ("include_namespaces: shop, team-*")."""
    shown = []
    for key, value in selection.items():
        if value in ([], "", None) or (key == "cluster_scoped" and value is True):
            continue
        if isinstance(value, list):
            shown.append((key, ", ".join(str(v) for v in value)))
        elif isinstance(value, bool):
            shown.append((key, "yes" if value else "no"))
        else:
            shown.append((key, str(value)))
    return shown


def _live_context(
    request: HttpRequest, snapshot: Snapshot, *, restore_form: RestoreForm | None = None
) -> dict[str, Any]:
    actor = actor_of(request)
    operation = operation_of(snapshot)
    active = operation if operation is not None and operation.is_active else None
    can_restore = can(actor, Action.RESTORE) and snapshot.status == SnapshotStatus.COMPLETED
    return {
        "snapshot": snapshot,
        "operation": operation,
        "active": active,
        # Every kind listed is counted, most with none: the table shows those it holds.
        "kinds": sorted((k, n) for k, n in (snapshot.kinds or {}).items() if n),
        "empty_kinds": sum(1 for n in (snapshot.kinds or {}).values() if not n),
        "selection": _selection_text(snapshot.selection or {}),
        "can_restore": can_restore,
        "restore_form": restore_form or (_restore_form(actor, snapshot) if can_restore else None),
    }


def _restores_context(request: HttpRequest, snapshot: Snapshot) -> dict[str, Any]:
    restores = list(
        selectors.list_restores(actor_of(request)).filter(snapshot_id=snapshot.pk)[:RESTORES_SHOWN]
    )
    return {"snapshot": snapshot, "restore_rows": rows_of(restores)}


def _detail_context(request: HttpRequest, snapshot: Snapshot, **kwargs: Any) -> dict[str, Any]:
    actor = actor_of(request)
    return {
        **_live_context(request, snapshot, **kwargs),
        **_restores_context(request, snapshot),
        "can_delete": can(actor, Action.SNAPSHOT_DELETE) and snapshot.status in DELETABLE,
    }


@require_GET
@not_found_is_404
def snapshot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A snapshot: status and progress, what it holds, its restores, and the actions on it."""
    snapshot = selectors.get_snapshot(actor_of(request), pk)
    return render(request, "snapshots/detail.html", _detail_context(request, snapshot))


@require_GET
def snapshot_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of a snapshot's page (htmx fragment)."""
    try:
        snapshot = selectors.get_snapshot(actor_of(request), pk)
    except NotFound:
        if not is_fragment(request):
            return render(request, "orgs/not_found.html", status=404)
        response = HttpResponse("")
        response["HX-Redirect"] = org_url(request, "snapshots:list")
        return response
    return render(request, "snapshots/partials/live.html", _live_context(request, snapshot))


@require_GET
@not_found_is_404
def snapshot_restores(request: HttpRequest, pk: int) -> HttpResponse:
    """The restores table of a snapshot's page (htmx fragment, refreshed on restore events)."""
    snapshot = selectors.get_snapshot(actor_of(request), pk)
    return render(request, "snapshots/partials/restores.html", _restores_context(request, snapshot))


@require_POST
@not_found_is_404
def snapshot_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a snapshot's objects from its storage, once its name is typed (its record stays)."""
    actor = actor_of(request)
    snapshot = selectors.get_snapshot(actor, pk)
    back = org_url(request, "snapshots:detail", pk=snapshot.pk)
    denied = refuse_unless(
        request,
        can(actor, Action.SNAPSHOT_DELETE),
        "Deleting snapshots",
        Action.SNAPSHOT_DELETE,
        back,
        snapshot.name,
    )
    if denied is not None:
        return denied
    try:
        if request.POST.get("confirm_name", "").strip() != snapshot.name:
            raise ValidationFailed.for_field(
                "confirm_name", f"Type the snapshot's name, {snapshot.name}, to delete it."
            )
        snapshot_services.delete_snapshot(actor, snapshot)
    except FlotillaError as error:
        if error.status == 403:
            return refused_by_service(request, error, back, snapshot.name)
        report_error(request, error)
        return org_redirect(request, "snapshots:detail", pk=snapshot.pk)
    where = snapshot.location.name if snapshot.location else "its storage"
    messages.success(request, f"Deleting snapshot {snapshot.name}: its files are removed from {where}.")
    return org_redirect(request, "snapshots:detail", pk=snapshot.pk)


@require_http_methods(["GET", "POST"])
@not_found_is_404
def snapshot_restore(request: HttpRequest, pk: int) -> HttpResponse:
    """The restore form: its submit starts a preview (a dry run) and goes to the preview's page."""
    actor = actor_of(request)
    snapshot = selectors.get_snapshot(actor, pk)
    back = org_url(request, "snapshots:detail", pk=snapshot.pk)
    if request.method == "GET" and not can(actor, Action.RESTORE):
        messages.error(request, needs_role("Restoring snapshots", Action.RESTORE))
        return org_redirect(request, "snapshots:detail", pk=snapshot.pk)
    denied = refuse_unless(
        request, can(actor, Action.RESTORE), "Restoring snapshots", Action.RESTORE, back, snapshot.name
    )
    if denied is not None:
        return denied
    form = _restore_form(actor, snapshot, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                target = cluster_selectors.get_cluster(actor, int(form.cleaned_data["target"]))
                requested = restore_services.start_restore(
                    actor,
                    snapshot,
                    target,
                    mode=RestoreMode.PREVIEW,
                    options=form.options(),
                    idempotency_key=_preview_key(request.POST.get("request_id", "")[:32]),
                )
            except FlotillaError as error:
                if error.status == 403:
                    return refused_by_service(request, error, back, snapshot.name)
                if isinstance(error, NotFound):
                    form.add_error("target", error.message)
                elif not form.add_service_errors(error.fields):
                    messages.error(request, error.message)
                status = 400 if isinstance(error, NotFound) else error.status
            else:
                restore = requested.restore
                messages.success(
                    request,
                    f"Previewing a restore of {snapshot.name} into {restore.target.name}: nothing is changed "
                    "until you confirm it.",
                )
                return org_redirect(request, "snapshots:restore_detail", pk=restore.pk)
    return render(request, "snapshots/restore_form.html", {"snapshot": snapshot, "form": form}, status=status)


def _preview_key(request_id: str) -> str:
    return f"portal:{request_id}:preview" if request_id else ""
