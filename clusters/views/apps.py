"""Apps: the org-wide list, the deploy form, an app's page with its live fragments, the actions
on it, and the Apps part of a cluster's page (its apps and every workload it runs).

Lists read the replica counts kept on each app (no cluster is called); an app's page and a
cluster's Apps part read pods and workloads from the cluster (a few seconds' cache in the
service). Live parts re-fetch themselves when portal.js relays an `app.changed` event.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clusters import selectors
from clusters.app_forms import DeployForm, EditForm
from clusters.choices import LIVE_STATUSES, AppStatus
from clusters.models import App, Cluster, Operation
from clusters.permissions import Action, can
from clusters.services import apps as app_services
from clusters.services import workloads as workload_services
from clusters.views.common import actor_of, is_fragment, needs_role, not_found_is_404, org_redirect, org_url
from clusters.workloads.pods import PodInfo
from clusters.workloads.spec import AppSpec
from orgs.actors import Actor
from orgs.exceptions import FlotillaError, NotFound, ValidationFailed
from orgs.feedback import report_error

SETTLED = (AppStatus.DELETING, AppStatus.DELETED)
HEALTHY = (AppStatus.DEPLOYING, AppStatus.AVAILABLE)

# --- Lists -----------------------------------------------------------------------------------


@dataclass
class AppRow:
    """An app in a table, with its rollout when one is under way."""

    app: App
    operation: Operation | None

    @property
    def active(self) -> Operation | None:
        """The operation still running (None once it finished)."""
        return self.operation if self.operation is not None and self.operation.is_active else None


APPS_PER_PAGE = 100


def app_rows(apps: Sequence[App]) -> list[AppRow]:
    """Rows of a table of apps: one more query for the page, whatever its length."""
    operations = selectors.last_operations(apps)
    return [AppRow(app, operations.get(app.pk)) for app in apps]


def _apps_context(request: HttpRequest) -> dict[str, Any]:
    actor = actor_of(request)
    clusters = list(selectors.list_clusters(actor))
    chosen = next((c for c in clusters if str(c.pk) == request.GET.get("cluster", "")), None)
    # A page at a time: rendering is most of a big list's cost, and 500 rows nobody reads at once.
    page = Paginator(selectors.list_apps(actor, cluster=chosen), APPS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    apps = list(page.object_list)
    query = {"cluster": str(chosen.pk)} if chosen else {}
    if page.number > 1:
        query["page"] = str(page.number)
    return {
        "rows": app_rows(apps),
        "page": page,
        "clusters": clusters,
        "chosen": chosen,
        "query": urlencode(query),
        "can_deploy": can(actor, Action.APP_DEPLOY),
    }


@require_GET
def app_list(request: HttpRequest) -> HttpResponse:
    """Every app of the org across its clusters (filtered by cluster), refreshed live."""
    return render(request, "clusters/apps/list.html", _apps_context(request))


@require_GET
def app_table(request: HttpRequest) -> HttpResponse:
    """The list's table alone (htmx fragment)."""
    return render(request, "clusters/partials/app_table.html", _apps_context(request))


# --- Deploy ----------------------------------------------------------------------------------


def _live_clusters(actor: Actor) -> list[Cluster]:
    return list(selectors.list_clusters(actor).filter(status__in=LIVE_STATUSES))


def _idempotency_key(request_id: str, cluster: str, namespace: str, name: str) -> str:
    # A double click replays the first request; the same form sent again for another app is new.
    return f"portal:{request_id}:{cluster}/{namespace.strip()}/{name.strip()}" if request_id else ""


@require_http_methods(["GET", "POST"])
def app_create(request: HttpRequest) -> HttpResponse:
    """Deploy an app from an image to one of the org's running clusters."""
    actor = actor_of(request)
    if request.method == "GET" and not can(actor, Action.APP_DEPLOY):
        messages.error(request, needs_role("Deploying apps", Action.APP_DEPLOY))
        return org_redirect(request, "clusters:apps")
    clusters = _live_clusters(actor)
    data = request.POST if request.method == "POST" else None
    initial = {"cluster": request.GET.get("cluster", ""), "request_id": secrets.token_urlsafe(16)}
    form = DeployForm(data, initial=initial, clusters=clusters)
    status = 200
    if data is not None:
        status = 400
        if form.is_valid():
            cleaned = form.cleaned_data
            try:
                requested = app_services.deploy_app(
                    actor,
                    cluster=selectors.get_cluster(actor, int(cleaned["cluster"])),
                    name=cleaned["name"],
                    namespace=cleaned["namespace"],
                    spec=form.spec(),
                    secrets=form.secret_values(),
                    idempotency_key=_idempotency_key(
                        cleaned["request_id"], cleaned["cluster"], cleaned["namespace"], cleaned["name"]
                    ),
                )
            except FlotillaError as error:
                if not form.add_service_errors(error.fields):
                    messages.error(request, error.message)
                status = error.status
            else:
                messages.success(request, f"Deploying {requested.app.name}: follow its rollout below.")
                return org_redirect(request, "clusters:app_detail", pk=requested.app.pk)
        form.forget_secrets()
    return render(request, "clusters/apps/create.html", {"form": form, "clusters": clusters}, status=status)


# --- One app ---------------------------------------------------------------------------------


@dataclass
class PodRow:
    """A pod on an app's page, with when it was made (for its age)."""

    pod: PodInfo
    created: datetime | None
    delete_url: str

    @property
    def last(self) -> str:
        """The last state a container left, as kubectl describes it ("OOMKilled, exit 137")."""
        for container in self.pod.containers:
            if container.last_state:
                code = f", exit {container.last_exit_code}" if container.last_exit_code is not None else ""
                return f"{container.last_reason or container.last_state}{code}"
        return ""

    @property
    def message(self) -> str:
        """What a waiting or failing container says."""
        return next((c.message for c in self.pod.containers if c.message), "")


def _pods(request: HttpRequest, actor: Actor, app: App) -> tuple[list[PodRow], str]:
    """The app's pods, or why they cannot be read now."""
    if app.status in SETTLED:
        return [], ""
    try:
        pods = workload_services.app_pods(actor, app)
    except FlotillaError as error:
        return [], error.message
    return [
        PodRow(
            pod,
            parse_datetime(pod.created_at) if pod.created_at else None,
            org_url(request, "clusters:app_pod_delete", pk=app.pk, pod=pod.name),
        )
        for pod in pods
    ], ""


def _pods_match(pods: Sequence[PodRow], desired: int) -> bool:
    running = [row for row in pods if not row.pod.deleting]
    return len(running) == desired and all(row.pod.ready == row.pod.total for row in running)


def _live_context(request: HttpRequest, app: App) -> dict[str, Any]:
    actor = actor_of(request)
    operation = selectors.last_operations([app]).get(app.pk)
    pods, pods_error = _pods(request, actor, app)
    may_change = can(actor, Action.APP_DEPLOY) and app.status not in SETTLED
    active = operation if operation is not None and operation.is_active else None
    return {
        "app": app,
        "operation": operation,
        "active": active,
        # Pods move between the app's events (a pod list is also a few seconds old): while a
        # rollout runs, or a healthy app's pods do not match its replicas yet, the fragment looks
        # again soon. A Degraded or Failed app is left to its events (it may stay so for long).
        "settling": not pods_error
        and (active is not None or (app.status in HEALTHY and not _pods_match(pods, app.desired_replicas))),
        "pods": pods,
        "pods_error": pods_error,
        "revisions": list(selectors.app_revisions(actor, app)),
        "events": selectors.app_events(actor, app, limit=50),
        "can_change": may_change,
        "can_delete_pods": may_change and app.cluster.status in LIVE_STATUSES,
    }


def _detail_context(request: HttpRequest, app: App, *, edit_form: EditForm | None = None) -> dict[str, Any]:
    actor = actor_of(request)
    spec = AppSpec.from_dict(app.spec)
    return {
        **_live_context(request, app),
        "spec": spec,
        "edit_form": edit_form or EditForm(initial=EditForm.initial_from(spec)),
        "can_delete": can(actor, Action.APP_DELETE) and app.status != AppStatus.DELETED,
    }


@require_GET
@not_found_is_404
def app_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An app: status, replicas, spec, rollout, pods, revisions and timeline, with the actions on it."""
    return render(
        request,
        "clusters/apps/detail.html",
        _detail_context(request, selectors.get_app(actor_of(request), pk)),
    )


@require_GET
def app_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of an app's page (htmx fragment)."""
    try:
        app = selectors.get_app(actor_of(request), pk)
    except NotFound:
        if not is_fragment(request):
            return render(request, "orgs/not_found.html", status=404)
        response = HttpResponse("")
        response["HX-Redirect"] = org_url(request, "clusters:apps")
        return response
    return render(request, "clusters/partials/app_live.html", _live_context(request, app))


@require_http_methods(["GET", "POST"])
@not_found_is_404
def app_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an app's image, ports, variables, resources or checks: a new revision is rolled out.
    Only the inputs the page sent change (the app page's image form sends the image alone)."""
    actor = actor_of(request)
    app = selectors.get_app(actor, pk)
    if request.method == "GET":
        if not can(actor, Action.APP_DEPLOY):
            messages.error(request, needs_role("Changing apps", Action.APP_DEPLOY))
            return org_redirect(request, "clusters:app_detail", pk=app.pk)
        form = EditForm(initial=EditForm.initial_from(AppSpec.from_dict(app.spec)))
        return render(request, "clusters/apps/edit.html", {"app": app, "form": form})
    form = EditForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            requested = app_services.update_app(
                actor,
                app,
                changes=form.spec(form.sent()),
                secrets=form.secret_values(),
                remove_secrets=form.removed_secrets(),
            )
        except FlotillaError as error:
            if error.status == 403:
                return _refused(request, app, error)
            if not form.add_service_errors(error.fields):
                messages.error(request, error.message)
            status = error.status
        else:
            changes = "; ".join(requested.app.revisions.get(number=requested.app.revision).changes)
            messages.success(request, f"Rolling out revision {requested.app.revision}: {changes}.")
            return org_redirect(request, "clusters:app_detail", pk=app.pk)
    form.forget_secrets()
    return render(request, "clusters/apps/edit.html", {"app": app, "form": form}, status=status)


def _refused(request: HttpRequest, app: App, error: FlotillaError) -> HttpResponse:
    """A write the member's role does not allow (no button offered it): 403 with the reason."""
    messages.error(request, error.message)
    return render(request, "clusters/apps/refused.html", {"app": app}, status=403)


def _app_action(
    request: HttpRequest, pk: int, act: Callable[[Actor, App], str], *, then_list: bool = False
) -> HttpResponse:
    """Run one write on an app; its message or error is shown on the next page."""
    actor = actor_of(request)
    app = selectors.get_app(actor, pk)
    try:
        done = act(actor, app)
    except FlotillaError as error:
        if error.status == 403:
            return _refused(request, app, error)
        report_error(request, error)
        return org_redirect(request, "clusters:app_detail", pk=app.pk)
    messages.success(request, done)
    if then_list:
        return org_redirect(request, "clusters:apps")
    return org_redirect(request, "clusters:app_detail", pk=app.pk)


@require_POST
@not_found_is_404
def app_scale(request: HttpRequest, pk: int) -> HttpResponse:
    """Set the app's number of replicas."""

    def act(actor: Actor, app: App) -> str:
        given = request.POST.get("replicas", "").strip()
        before = app.spec.get("replicas")
        requested = app_services.scale_app(actor, app, replicas=int(given) if given.isdigit() else given)
        return f"Scaling {app.name} from {before} to {requested.app.desired_replicas} replicas."

    return _app_action(request, pk, act)


@require_POST
@not_found_is_404
def app_restart(request: HttpRequest, pk: int) -> HttpResponse:
    """Replace every pod of the app, a few at a time."""

    def act(actor: Actor, app: App) -> str:
        app_services.restart_app(actor, app)
        return f"Restarting {app.name}: its pods are replaced a few at a time."

    return _app_action(request, pk, act)


@require_POST
@not_found_is_404
def app_rollback(request: HttpRequest, pk: int) -> HttpResponse:
    """Go back to an earlier revision (recorded as a new one)."""

    def act(actor: Actor, app: App) -> str:
        revision = request.POST.get("revision", "")
        requested = app_services.rollback_app(actor, app, revision=revision)
        return (
            f"Rolling {app.name} back to revision {revision}: recorded as revision {requested.app.revision}."
        )

    return _app_action(request, pk, act)


@require_POST
@not_found_is_404
def app_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete the app and what Flotilla made for it in the cluster, once its name is typed."""

    def act(actor: Actor, app: App) -> str:
        if request.POST.get("confirm_name", "").strip() != app.name:
            raise ValidationFailed.for_field(
                "confirm_name", f"Type the app's name, {app.name}, to delete it."
            )
        app_services.delete_app(actor, app)
        return f"Deleting {app.name}: its Deployment, Service and Secret are removed from {app.cluster.name}."

    return _app_action(request, pk, act, then_list=True)


@require_POST
@not_found_is_404
def app_pod_delete(request: HttpRequest, pk: int, pod: str) -> HttpResponse:
    """Delete one of the app's pods (its Deployment makes a new one)."""

    def act(actor: Actor, app: App) -> str:
        app_services.delete_app_pod(actor, app, pod=pod)
        return f"Deleted pod {pod}: its Deployment makes a new one."

    return _app_action(request, pk, act)


# --- A cluster's apps and workloads ----------------------------------------------------------


@require_GET
@not_found_is_404
def cluster_apps(request: HttpRequest, pk: int) -> HttpResponse:
    """The Apps part of a cluster's page: its apps, and every workload it runs (htmx fragment)."""
    actor = actor_of(request)
    cluster = selectors.get_cluster(actor, pk)
    workloads: list[workload_services.Workload] = []
    workloads_error = ""
    if cluster.status in LIVE_STATUSES:
        try:
            workloads = workload_services.cluster_workloads(actor, cluster)
        except FlotillaError as error:
            workloads_error = error.message
    context = {
        "cluster": cluster,
        "rows": app_rows(list(selectors.list_apps(actor, cluster=cluster))),
        "workloads": workloads,
        "workloads_error": workloads_error,
        "can_deploy": can(actor, Action.APP_DEPLOY) and cluster.status in LIVE_STATUSES,
        "hide_cluster": True,
    }
    return render(request, "clusters/partials/cluster_apps.html", context)


@require_POST
@not_found_is_404
def workload_adopt(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a Deployment of the cluster that Flotilla did not create one of its apps."""
    actor = actor_of(request)
    cluster = selectors.get_cluster(actor, pk)
    try:
        requested = app_services.adopt_workload(
            actor,
            cluster,
            kind=request.POST.get("kind", ""),
            namespace=request.POST.get("namespace", ""),
            name=request.POST.get("name", ""),
        )
    except FlotillaError as error:
        if error.status == 403:
            messages.error(request, error.message)
            return render(request, "clusters/apps/refused.html", {"cluster": cluster}, status=403)
        report_error(request, error)
        return org_redirect(request, "clusters:detail", pk=cluster.pk)
    messages.success(
        request, f"Adopted {requested.app.namespace}/{requested.app.name}: Flotilla manages it now."
    )
    return org_redirect(request, "clusters:app_detail", pk=requested.app.pk)
