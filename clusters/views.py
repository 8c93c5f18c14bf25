"""Portal pages of the clusters app. Thin: parse the form, call a service or selector, render.

Live parts (the cluster table, a cluster's status, progress, nodes, operations and timeline) are
htmx fragments that re-fetch themselves when portal.js relays a `cluster.changed` event.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clusters import selectors
from clusters.choices import ClusterStatus, OperationStatus, ProviderKind
from clusters.forms import (
    ClusterForm,
    ImportForm,
    PoolForm,
    PoolFormSet,
    ProviderForm,
    format_labels,
    format_taints,
)
from clusters.models import Cluster, NodePool, Operation, ProviderAccount
from clusters.providers.base import Region, Size
from clusters.providers.registry import driver_classes, driver_for
from clusters.services import clusters as cluster_services
from clusters.services import providers as provider_services
from orgs.actors import Actor
from orgs.exceptions import FlotillaError, NotFound
from orgs.feedback import report_error
from orgs.permissions import MATRIX, Action, can

View = Callable[..., HttpResponseBase]
# "pools[1].count" names a field of the second pool the service was given.
_POOL_FIELD = re.compile(r"^pools\[(\d+)\](?:\.(\w+))?$")
_GONE = (ClusterStatus.DELETING, ClusterStatus.DELETED)


def _actor(request: HttpRequest) -> Actor:
    return request.actor  # type: ignore[attr-defined,no-any-return]


def _url(request: HttpRequest, name: str, **kwargs: Any) -> str:
    """An org-scoped URL of the current org, with any other kwargs."""
    return reverse(name, kwargs={"org_slug": request.org.slug, **kwargs})  # type: ignore[attr-defined]


def _redirect(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    return redirect(_url(request, name, **kwargs))


def _not_found_is_404(view: View) -> View:
    """One 404 page whether the object is missing or another org's (selectors raise NotFound)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except NotFound:
            return render(request, "orgs/not_found.html", status=404)

    return wrapper


def _needs_role(what: str, action: Action) -> str:
    return f"{what} needs the {MATRIX[action].label.lower()} role or higher."


def _is_fragment(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request"))


def _place_errors(
    request: HttpRequest, error: FlotillaError, form: forms.Form, rows: Sequence[PoolForm] = ()
) -> None:
    """A service error on the fields it names: `pools[i].x` on the i-th pool row, else the form."""
    placed = False
    for name, reasons in error.fields.items():
        match = _POOL_FIELD.match(name)
        for reason in reasons:
            if match is not None and int(match.group(1)) < len(rows):
                row = rows[int(match.group(1))]
                row.add_error(match.group(2) if match.group(2) in row.fields else None, reason)
            else:
                form.add_error(name if name in form.fields else None, reason)
            placed = True
    if not placed:
        messages.error(request, error.message)


# --- Provider catalogues -------------------------------------------------------------------


@dataclass
class Catalogue:
    """What a provider offers, read for one page: regions, the sizes of one region, versions."""

    regions: list[Region] = field(default_factory=list)
    region: str = ""
    sizes: list[Size] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    error: str = ""


def _catalogue(account: ProviderAccount | None, region: str = "") -> Catalogue:
    if account is None:
        return Catalogue()
    try:
        driver = driver_for(account)
        regions = list(driver.regions())
        ids = [r.id for r in regions]
        chosen = region if region in ids else (ids[0] if ids else "")
        return Catalogue(
            regions=regions,
            region=chosen,
            sizes=list(driver.sizes(chosen)),
            versions=list(driver.versions()),
        )
    except FlotillaError as error:
        return Catalogue(
            region=region, error=f"Could not read the catalogue of {account.name}: {error.message}"
        )


# --- Cluster list --------------------------------------------------------------------------


def _list_context(request: HttpRequest) -> dict[str, Any]:
    actor = _actor(request)
    clusters = list(
        selectors.list_clusters(actor).defer("kubeconfig", "bootstrap_secret", "provider__credentials")
    )
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


# --- Create --------------------------------------------------------------------------------


@dataclass
class ClusterFormPage:
    """The create form, its pool rows and the catalogue of the chosen provider."""

    form: ClusterForm
    pools: Any  # a PoolFormSet
    catalogue: Catalogue
    accounts: list[ProviderAccount]

    def is_valid(self) -> bool:
        return all([self.form.is_valid(), self.pools.is_valid()])

    def rows(self) -> list[PoolForm]:
        """The filled-in pool rows, in the order the service receives them."""
        return [row for row in self.pools.forms if row.cleaned_data]

    def context(self, **extra: Any) -> dict[str, Any]:
        return {
            "form": self.form,
            "pools": self.pools,
            "catalogue": self.catalogue,
            "has_accounts": bool(self.accounts),
            **extra,
        }


def _cluster_form_page(actor: Actor, data: QueryDict | None) -> ClusterFormPage:
    accounts = [a for a in selectors.list_provider_accounts(actor) if a.kind != ProviderKind.EXISTING]
    wanted = data.get("provider", "") if data is not None else ""
    account = next((a for a in accounts if str(a.pk) == wanted), accounts[0] if accounts else None)
    catalogue = _catalogue(account, data.get("region", "") if data is not None else "")
    initial = {
        "provider": str(account.pk) if account else "",
        "region": catalogue.region,
        "version": catalogue.versions[0] if catalogue.versions else "",
        "request_id": secrets.token_urlsafe(16),
    }
    form = ClusterForm(
        data,
        initial=initial,
        accounts=accounts,
        regions=catalogue.regions,
        versions=catalogue.versions,
    )
    pools = PoolFormSet(
        data,
        prefix="pools",
        initial=None if data is not None else [{"name": "default", "count": 1}],
        form_kwargs={"sizes": catalogue.sizes},
    )
    return ClusterFormPage(form, pools, catalogue, accounts)


def _idempotency_key(request_id: str, name: str) -> str:
    # The same form sent twice (a double click) replays the first request; the same form sent
    # again for another cluster (back button, new name) is a new request.
    return f"portal:{request_id}:{name.strip()}" if request_id else ""


def _ensure_local_provider(actor: Actor) -> None:
    """Offer the local provider to an org that has none yet."""
    try:
        provider_services.ensure_local_provider(actor)
    except FlotillaError:
        # Not everyone may connect providers, and a host without local binaries has none to
        # offer: the form then lists the accounts that exist.
        return


@require_http_methods(["GET", "POST"])
def cluster_create(request: HttpRequest) -> HttpResponse:
    """Launch a cluster on one of the org's provider accounts."""
    actor = _actor(request)
    if request.method == "GET":
        if not can(actor, Action.CLUSTER_CREATE):
            messages.error(request, _needs_role("Creating clusters", Action.CLUSTER_CREATE))
            return _redirect(request, "clusters:list")
        _ensure_local_provider(actor)
    data = request.POST if request.method == "POST" else None
    page = _cluster_form_page(actor, data)
    status = 200
    if data is not None:
        status = 400
        if page.is_valid():
            cleaned = page.form.cleaned_data
            rows = page.rows()
            try:
                account = selectors.get_provider_account(actor, int(cleaned["provider"]))
                requested = cluster_services.create_cluster(
                    actor,
                    name=cleaned["name"],
                    provider=account,
                    region=cleaned["region"],
                    version=cleaned["version"],
                    pools=[row.pool() for row in rows],
                    idempotency_key=_idempotency_key(cleaned["request_id"], cleaned["name"]),
                )
            except FlotillaError as error:
                _place_errors(request, error, page.form, rows)
                status = error.status
            else:
                messages.success(request, f"Creating {requested.cluster.name}: follow its progress below.")
                return _redirect(request, "clusters:detail", pk=requested.cluster.pk)
    return render(request, "clusters/create.html", page.context(), status=status)


@require_GET
def create_options(request: HttpRequest) -> HttpResponse:
    """The create form's provider-dependent part (region, version, pools) for another provider or region."""
    page = _cluster_form_page(_actor(request), request.GET)
    return render(request, "clusters/partials/cluster_options.html", page.context(show_errors=False))


# --- Import --------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def cluster_import(request: HttpRequest) -> HttpResponse:
    """Bring a running cluster in by kubeconfig."""
    actor = _actor(request)
    if request.method == "GET" and not can(actor, Action.CLUSTER_CREATE):
        messages.error(request, _needs_role("Importing clusters", Action.CLUSTER_CREATE))
        return _redirect(request, "clusters:list")
    form = ImportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                requested = cluster_services.import_cluster(
                    actor,
                    name=form.cleaned_data["name"],
                    kubeconfig=form.cleaned_data["kubeconfig_text"],
                    context=form.cleaned_data["context"].strip() or None,
                )
            except FlotillaError as error:
                _place_errors(request, error, form)
                status = error.status
            else:
                messages.success(request, f"Imported {requested.cluster.name}.")
                return _redirect(request, "clusters:detail", pk=requested.cluster.pk)
    return render(request, "clusters/import.html", {"form": form}, status=status)


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
    actor = _actor(request)
    operations = list(selectors.list_operations(actor, cluster=cluster)[:15])
    may_update = can(actor, Action.CLUSTER_UPDATE)
    retryable = _retryable(operations) if may_update else set()
    active = list(getattr(cluster, "active_operations", []))
    return {
        "cluster": cluster,
        "active": active[0] if active else None,
        "nodes": list(selectors.list_nodes(actor, cluster)),
        "events": selectors.cluster_events(actor, cluster, limit=50),
        "operations": [
            OperationRow(op, can_cancel=may_update and op.is_active, can_retry=op.pk in retryable)
            for op in operations
        ],
        "can_download": can(actor, Action.KUBECONFIG_DOWNLOAD) and bool(cluster.kubeconfig),
    }


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _detail_context(
    request: HttpRequest, cluster: Cluster, *, pool_form: PoolForm | None = None
) -> dict[str, Any]:
    actor = _actor(request)
    managed = not cluster.is_imported
    can_update = can(actor, Action.CLUSTER_UPDATE) and managed and cluster.status not in _GONE
    catalogue = _catalogue(cluster.provider, cluster.region) if can_update else Catalogue()
    if pool_form is None:
        pool_form = PoolForm(prefix="pool", sizes=catalogue.sizes)
    pools = [
        PoolRow(
            pool,
            labels=format_labels(pool.labels or {}),
            taints=format_taints(pool.taints or []),
            scale_url=_url(request, "clusters:pool_scale", pk=cluster.pk, pool_pk=pool.pk),
            remove_url=_url(request, "clusters:pool_remove", pk=cluster.pk, pool_pk=pool.pk),
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
        "upgrade_versions": [
            (v, "downgrade" if _version_key(v) < _version_key(cluster.version) else "")
            for v in catalogue.versions
            if v != cluster.version
        ],
        "catalogue_error": catalogue.error,
    }


def _detail_page(
    request: HttpRequest, cluster: Cluster, *, pool_form: PoolForm | None = None, status: int = 200
) -> HttpResponse:
    return render(
        request, "clusters/detail.html", _detail_context(request, cluster, pool_form=pool_form), status=status
    )


@require_GET
@_not_found_is_404
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A cluster: status, pools, nodes, operations and its timeline, with the actions on it."""
    return _detail_page(request, selectors.get_cluster(_actor(request), pk))


@require_GET
def cluster_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the cluster page (htmx fragment)."""
    try:
        cluster = selectors.get_cluster(_actor(request), pk)
    except NotFound:
        if not _is_fragment(request):
            return render(request, "orgs/not_found.html", status=404)
        # Deleted while the page was open: the page moves to the list.
        response = HttpResponse("")
        response["HX-Redirect"] = _url(request, "clusters:list")
        return response
    return render(request, "clusters/partials/cluster_live.html", _live_context(request, cluster))


@require_GET
@_not_found_is_404
def kubeconfig(request: HttpRequest, pk: int) -> HttpResponse:
    """The cluster's kubeconfig as a file (members and up; every download is audited)."""
    actor = _actor(request)
    cluster = selectors.get_cluster(actor, pk)
    try:
        text = cluster_services.download_kubeconfig(actor, cluster)
    except FlotillaError as error:
        report_error(request, error)
        return _redirect(request, "clusters:detail", pk=cluster.pk)
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{cluster.name}.kubeconfig.yaml"'
    response["Cache-Control"] = "no-store"
    return response


def _cluster_action(
    request: HttpRequest, pk: int, act: Callable[[Actor, Cluster], str], *, then_list: bool = False
) -> HttpResponse:
    """Run one write on a cluster; its message or error is shown on the next page."""
    actor = _actor(request)
    cluster = selectors.get_cluster(actor, pk)
    try:
        done = act(actor, cluster)
    except FlotillaError as error:
        report_error(request, error)
        return _redirect(request, "clusters:detail", pk=cluster.pk)
    messages.success(request, done)
    if then_list:
        return _redirect(request, "clusters:list")
    return _redirect(request, "clusters:detail", pk=cluster.pk)


@require_POST
@_not_found_is_404
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
@_not_found_is_404
def pool_remove(request: HttpRequest, pk: int, pool_pk: int) -> HttpResponse:
    """Remove a pool and its nodes."""

    def act(actor: Actor, cluster: Cluster) -> str:
        pool = selectors.get_pool(actor, cluster, pool_pk)
        cluster_services.remove_node_pool(actor, cluster, pool)
        return f"Removing pool {pool.name}."

    return _cluster_action(request, pk, act)


@require_POST
@_not_found_is_404
def pool_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a pool; errors are shown on the add-pool form."""
    actor = _actor(request)
    cluster = selectors.get_cluster(actor, pk)
    catalogue = _catalogue(cluster.provider, cluster.region) if not cluster.is_imported else Catalogue()
    form = PoolForm(request.POST, prefix="pool", sizes=catalogue.sizes)
    status = 400
    if form.is_valid():
        try:
            cluster_services.add_node_pool(actor, cluster, pool=form.pool())
        except FlotillaError as error:
            _place_errors(request, error, form, [form])
            status = error.status
        else:
            messages.success(request, f"Adding pool {form.cleaned_data['name']}.")
            return _redirect(request, "clusters:detail", pk=cluster.pk)
    return _detail_page(request, cluster, pool_form=form, status=status)


@require_POST
@_not_found_is_404
def cluster_upgrade(request: HttpRequest, pk: int) -> HttpResponse:
    """Move the cluster to another Kubernetes version."""

    def act(actor: Actor, cluster: Cluster) -> str:
        operation = cluster_services.upgrade_cluster(actor, cluster, version=request.POST.get("version", ""))
        return f"Upgrading {cluster.name} from {operation.params['from']} to {operation.params['to']}."

    return _cluster_action(request, pk, act)


@require_POST
@_not_found_is_404
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
    actor = _actor(request)
    operation = selectors.get_operation(actor, pk)
    try:
        act(actor, operation)
    except FlotillaError as error:
        report_error(request, error)
    else:
        messages.success(request, done.format(op=operation))
    if operation.cluster.deleted_at is not None:
        return _redirect(request, "clusters:list")
    return _redirect(request, "clusters:detail", pk=operation.cluster_id)


@require_POST
@_not_found_is_404
def operation_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop an operation (a running one after its current step)."""
    return _operation_action(
        request, pk, cluster_services.cancel_operation, "Cancelling {op.get_kind_display} (#{op.pk})."
    )


@require_POST
@_not_found_is_404
def operation_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Run a failed or cancelled operation again."""
    return _operation_action(
        request, pk, cluster_services.retry_operation, "Retrying {op.get_kind_display} (#{op.pk})."
    )


# --- Provider accounts ---------------------------------------------------------------------


def _provider_kinds() -> list[tuple[str, str]]:
    # Existing clusters get their account when imported; every other kind can be connected.
    available = driver_classes()
    return [(k.value, k.label) for k in ProviderKind if k in available and k != ProviderKind.EXISTING]


def _provider_form(data: QueryDict | None, kind: str) -> ProviderForm:
    kinds = _provider_kinds()
    if kind not in dict(kinds):
        kind = kinds[0][0]
    fields = driver_classes()[kind].credential_fields
    return ProviderForm(data, initial={"kind": kind}, kinds=kinds, credential_fields=fields)


def _providers_context(request: HttpRequest, form: ProviderForm) -> dict[str, Any]:
    actor = _actor(request)
    accounts: QuerySet[ProviderAccount] = selectors.list_provider_accounts(actor)
    return {
        "accounts": list(accounts.defer("credentials")),
        "form": form,
        "can_manage": can(actor, Action.PROVIDER_MANAGE),
    }


@require_http_methods(["GET", "POST"])
def providers(request: HttpRequest) -> HttpResponse:
    """The org's provider accounts, and a form to connect one (admins)."""
    actor = _actor(request)
    data = request.POST if request.method == "POST" else None
    form = _provider_form(data, (data or request.GET).get("kind", ""))
    status = 200
    if data is not None:
        status = 400
        if form.is_valid():
            try:
                account = provider_services.create_provider_account(
                    actor,
                    name=form.cleaned_data["name"],
                    kind=form.cleaned_data["kind"],
                    fields=form.credential_values(),
                )
            except FlotillaError as error:
                _place_provider_errors(request, error, form)
                status = error.status
            else:
                messages.success(request, f"Connected {account.name}; its credentials were checked.")
                return _redirect(request, "clusters:providers")
        form.forget_secrets()
    return render(request, "clusters/providers.html", _providers_context(request, form), status=status)


def _place_provider_errors(request: HttpRequest, error: FlotillaError, form: ProviderForm) -> None:
    placed = False
    for name, reasons in error.fields.items():
        for reason in reasons:
            form.add_error(form.field_for(name), reason)
            placed = True
    if not placed:
        messages.error(request, error.message)


@require_GET
def provider_fields(request: HttpRequest) -> HttpResponse:
    """The credential fields of one provider kind (htmx fragment)."""
    form = _provider_form(None, request.GET.get("kind", ""))
    return render(request, "clusters/partials/provider_fields.html", {"form": form})


@require_POST
@_not_found_is_404
def provider_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove an account no live cluster uses."""
    actor = _actor(request)
    account = selectors.get_provider_account(actor, pk)
    try:
        provider_services.delete_provider_account(actor, account)
    except FlotillaError as error:
        report_error(request, error)
    else:
        messages.success(request, f"Removed {account.name}.")
    return _redirect(request, "clusters:providers")
