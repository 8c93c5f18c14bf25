"""The cluster list, one cluster's page with its live fragments, and the actions on it.

Live parts (the cluster table, a cluster's status, progress, nodes, operations and timeline) are
htmx fragments that re-fetch themselves when portal.js relays a `cluster.changed` event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from clusters import selectors, versions
from clusters.choices import ClusterStatus, OperationStatus
from clusters.forms import (
    PoolForm,
    format_labels,
    format_taints,
)
from clusters.models import Cluster, NodePool, Operation
from clusters.permissions import Action, can
from clusters.providers.catalogue import Catalogue, read_catalogue
from clusters.services import clusters as cluster_services
from clusters.views.common import (
    GONE,
    actor_of,
    is_fragment,
    not_found_is_404,
    org_redirect,
    org_url,
    place_errors,
)
from orgs.actors import Actor
from orgs.exceptions import FlotillaError, NotFound
from orgs.feedback import report_error

# --- Cluster list --------------------------------------------------------------------------


def _list_context(request: HttpRequest) -> dict[str, Any]:
    actor = actor_of(request)
    clusters = list(selectors.list_clusters(actor))
    by_status: dict[str, int] = {}
    for cluster in clusters:
        by_status[cluster.status] = by_status.get(cluster.status, 0) + 1
    return {
        "clusters": clusters,
        "summary": {
            "total": len(clusters),
            "ready": by_status.get(ClusterStatus.READY, 0),
            "unhealthy": by_status.get(ClusterStatus.DEGRADED, 0) + by_status.get(ClusterStatus.ERROR, 0),
            "nodes_ready": sum(c.ready_nodes for c in clusters),  # type: ignore[attr-defined]
            "nodes": sum(c.node_total for c in clusters),  # type: ignore[attr-defined]
        },
        "can_create": can(actor, Action.CLUSTER_CREATE),
    }


@require_GET
def cluster_list(request: HttpRequest) -> HttpResponse:
    """Every live cluster of the org with its health, refreshed live."""
    return render(request, "clusters/list.html", _list_context(request))


@require_GET
def cluster_table(request: HttpRequest) -> HttpResponse:
    """The list's table alone (htmx fragment)."""
    return render(request, "clusters/partials/cluster_table.html", _list_context(request))


# --- One cluster ---------------------------------------------------------------------------


@dataclass
class PoolRow:
    """A pool on the cluster page, with where its forms post."""

    pool: NodePool
    labels: str
    taints: str
    scale_url: str
    remove_url: str


@dataclass
class OperationRow:
    """An operation on the cluster page and what may be done with it."""

    operation: Operation
    can_cancel: bool
    can_retry: bool


def _retryable(operations: Sequence[Operation]) -> set[int]:
    # The service retries a failed or cancelled operation only when nothing but cancelled
    # operations came after it; `operations` is newest first.
    found: set[int] = set()
    for operation in operations:
        if operation.is_active:
            return set()
        if operation.status in (OperationStatus.FAILED, OperationStatus.CANCELLED):
            found.add(operation.pk)
        if operation.status != OperationStatus.CANCELLED:
            break
    return found


def _live_context(request: HttpRequest, cluster: Cluster) -> dict[str, Any]:
    actor = actor_of(request)
    operations = list(selectors.list_operations(actor, cluster=cluster)[:15])
    may_update = can(actor, Action.CLUSTER_UPDATE)
    retryable = _retryable(operations) if may_update else set()

    def may_act(operation: Operation) -> bool:
        # The service's own rule: cancelling or retrying needs the permission of the
        # operation's kind too (a member may not stop, or restart, an admin's deletion).
        return may_update and cluster_services.can_act_on_operation(actor, operation)

    active = list(getattr(cluster, "active_operations", []))
    return {
        "cluster": cluster,
        "active": active[0] if active else None,
        "nodes": list(selectors.list_nodes(actor, cluster)),
        "events": selectors.cluster_events(actor, cluster, limit=50),
        "operations": [
            OperationRow(
                op,
                can_cancel=op.is_active and may_act(op),
                can_retry=op.pk in retryable and may_act(op),
            )
            for op in operations
        ],
        "can_download": can(actor, Action.KUBECONFIG_DOWNLOAD) and bool(cluster.kubeconfig),
    }


def _detail_context(
    request: HttpRequest, cluster: Cluster, *, pool_form: PoolForm | None = None
) -> dict[str, Any]:
    actor = actor_of(request)
    managed = not cluster.is_imported
    can_update = can(actor, Action.CLUSTER_UPDATE) and managed and cluster.status not in GONE
    catalogue = read_catalogue(cluster.provider, cluster.region) if can_update else Catalogue()
    if pool_form is None:
        pool_form = PoolForm(prefix="pool", sizes=catalogue.sizes)
    pools = [
        PoolRow(
            pool,
            labels=format_labels(pool.labels or {}),
            taints=format_taints(pool.taints or []),
            scale_url=org_url(request, "clusters:pool_scale", pk=cluster.pk, pool_pk=pool.pk),
            remove_url=org_url(request, "clusters:pool_remove", pk=cluster.pk, pool_pk=pool.pk),
        )
        for pool in cluster.pools.all()
    ]
    return {
        **_live_context(request, cluster),
        "pools": pools,
        "managed": managed,
        "can_update": can_update,
        "can_delete": can(actor, Action.CLUSTER_DELETE) and cluster.status != ClusterStatus.DELETED,
        "pool_form": pool_form,
        "upgrade_versions": versions.upgrade_targets(cluster.version, catalogue.versions),
        "catalogue_error": catalogue.error,
    }


def _detail_page(
    request: HttpRequest, cluster: Cluster, *, pool_form: PoolForm | None = None, status: int = 200
) -> HttpResponse:
    return render(
        request, "clusters/detail.html", _detail_context(request, cluster, pool_form=pool_form), status=status
    )


@require_GET
@not_found_is_404
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A cluster: status, pools, nodes, operations and its timeline, with the actions on it."""
    return _detail_page(request, selectors.get_cluster(actor_of(request), pk))


@require_GET
def cluster_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the cluster page (htmx fragment)."""
    try:
        cluster = selectors.get_cluster(actor_of(request), pk)
    except NotFound:
        if not is_fragment(request):
            return render(request, "orgs/not_found.html", status=404)
        # Deleted while the page was open: the page moves to the list.
        response = HttpResponse("")
        response["HX-Redirect"] = org_url(request, "clusters:list")
        return response
    return render(request, "clusters/partials/cluster_live.html", _live_context(request, cluster))


@require_GET
@not_found_is_404
def kubeconfig(request: HttpRequest, pk: int) -> HttpResponse:
    """The cluster's kubeconfig as a file (members and up; every download is audited)."""
    actor = actor_of(request)
    cluster = selectors.get_cluster(actor, pk)
    try:
        text = cluster_services.download_kubeconfig(actor, cluster)
    except FlotillaError as error:
        report_error(request, error)
        return org_redirect(request, "clusters:detail", pk=cluster.pk)
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{cluster.name}.kubeconfig.yaml"'
    response["Cache-Control"] = "no-store"
    return response


def _cluster_action(
    request: HttpRequest, pk: int, act: Callable[[Actor, Cluster], str], *, then_list: bool = False
) -> HttpResponse:
    """Run one write on a cluster; its message or error is shown on the next page."""
    actor = actor_of(request)
    cluster = selectors.get_cluster(actor, pk)
    try:
        done = act(actor, cluster)
    except FlotillaError as error:
        report_error(request, error)
        return org_redirect(request, "clusters:detail", pk=cluster.pk)
    messages.success(request, done)
    if then_list:
        return org_redirect(request, "clusters:list")
    return org_redirect(request, "clusters:detail", pk=cluster.pk)


@require_POST
@not_found_is_404
def pool_scale(request: HttpRequest, pk: int, pool_pk: int) -> HttpResponse:
    """Set a pool's node count."""

    def act(actor: Actor, cluster: Cluster) -> str:
        pool = selectors.get_pool(actor, cluster, pool_pk)
        operation = cluster_services.scale_node_pool(
            actor, cluster, pool, count=request.POST.get("count", "")
        )
        return f"Scaling {pool.name} from {operation.params['from']} to {operation.params['to']} nodes."

    return _cluster_action(request, pk, act)


@require_POST
@not_found_is_404
def pool_remove(request: HttpRequest, pk: int, pool_pk: int) -> HttpResponse:
    """Remove a pool and its nodes."""

    def act(actor: Actor, cluster: Cluster) -> str:
        pool = selectors.get_pool(actor, cluster, pool_pk)
        cluster_services.remove_node_pool(actor, cluster, pool)
        return f"Removing pool {pool.name}."

    return _cluster_action(request, pk, act)


@require_POST
@not_found_is_404
def pool_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a pool; errors are shown on the add-pool form."""
    actor = actor_of(request)
    cluster = selectors.get_cluster(actor, pk)
    catalogue = read_catalogue(cluster.provider, cluster.region) if not cluster.is_imported else Catalogue()
    form = PoolForm(request.POST, prefix="pool", sizes=catalogue.sizes)
    status = 400
    if form.is_valid():
        try:
            cluster_services.add_node_pool(actor, cluster, pool=form.pool())
        except FlotillaError as error:
            place_errors(request, error, form, [form])
            status = error.status
        else:
            messages.success(request, f"Adding pool {form.cleaned_data['name']}.")
            return org_redirect(request, "clusters:detail", pk=cluster.pk)
    return _detail_page(request, cluster, pool_form=form, status=status)


@require_POST
@not_found_is_404
def cluster_upgrade(request: HttpRequest, pk: int) -> HttpResponse:
    """Move the cluster to another Kubernetes version."""

    def act(actor: Actor, cluster: Cluster) -> str:
        operation = cluster_services.upgrade_cluster(actor, cluster, version=request.POST.get("version", ""))
        return f"Upgrading {cluster.name} from {operation.params['from']} to {operation.params['to']}."

    return _cluster_action(request, pk, act)


@require_POST
@not_found_is_404
def cluster_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a cluster (an imported one is only forgotten)."""

    def act(actor: Actor, cluster: Cluster) -> str:
        cluster_services.delete_cluster(actor, cluster)
        verb = "Forgetting" if cluster.is_imported else "Deleting"
        return f"{verb} {cluster.name}."

    return _cluster_action(request, pk, act, then_list=True)


def _operation_action(
    request: HttpRequest, pk: int, act: Callable[[Actor, Operation], Operation], done: str
) -> HttpResponse:
    actor = actor_of(request)
    operation = selectors.get_operation(actor, pk)
    try:
        act(actor, operation)
    except FlotillaError as error:
        report_error(request, error)
    else:
        messages.success(request, done.format(op=operation))
    if operation.cluster.deleted_at is not None:
        return org_redirect(request, "clusters:list")
    return org_redirect(request, "clusters:detail", pk=operation.cluster_id)


@require_POST
@not_found_is_404
def operation_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop an operation (a running one after its current step)."""
    return _operation_action(
        request, pk, cluster_services.cancel_operation, "Cancelling {op.get_kind_display} (#{op.pk})."
    )


@require_POST
@not_found_is_404
def operation_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Run a failed or cancelled operation again."""
    return _operation_action(
        request, pk, cluster_services.retry_operation, "Retrying {op.get_kind_display} (#{op.pk})."
    )
