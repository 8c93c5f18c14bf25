"""Staff tools for clusters across organisations: clusters, operations, apps and provider accounts.

These rows live in each org's schema. As in the audit-log admin, a changelist shows one org at a
time (`?schema=org_x`, the "organisation" filter) and runs inside that schema. Without an org,
clusters and operations redirect to the staff directory's lists across orgs
(clusters.directory.admin: public-schema entries, so a page costs the same whatever the number of
orgs), provider accounts to the organisations. Writes go through the services with a staff actor
(permission-checked and audited like the portal's). Credentials, kubeconfigs and apps' secret
variables are never shown (nor read: their columns are deferred).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django_tenants.utils import get_public_schema_name, schema_context

from clusters.models import (
    App,
    AppRevision,
    CloudResource,
    Cluster,
    NodePool,
    Operation,
    OperationTransition,
    ProviderAccount,
)
from clusters.services import clusters as cluster_services
from orgs.admin import staff_actor
from orgs.exceptions import FlotillaError
from orgs.models import Organization


def _orgs() -> QuerySet[Organization]:
    orgs: QuerySet[Organization] = Organization.objects.exclude(schema_name=get_public_schema_name())
    return orgs.order_by("slug")


def _org_of(request: HttpRequest) -> Organization | None:
    """The org chosen with ?schema= (kept by the admin in _changelist_filters on change pages)."""
    wanted = request.GET.get("schema", "")
    if not wanted:
        filters = parse_qs(request.GET.get("_changelist_filters", ""))
        wanted = (filters.get("schema") or [""])[0]
    if not wanted:
        return None
    with schema_context(get_public_schema_name()):
        return _orgs().filter(schema_name=wanted).first()


class OrgSchemaFilter(admin.SimpleListFilter):
    """Which organisation's rows to show (the schema is switched in the views)."""

    title = "organisation"
    parameter_name = "schema"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        with schema_context(get_public_schema_name()):
            return [(schema, slug) for schema, slug in _orgs().values_list("schema_name", "slug")]

    def choices(self, changelist: Any) -> Iterator[Any]:
        # The first choice, "All", leads to the list across orgs (there is no schema-less list).
        for index, choice in enumerate(super().choices(changelist)):
            if index == 0:
                choice["display"] = "All (across organisations)"
            yield choice

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset


class TenantModelAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A read-only admin of a tenant model: each page runs in the chosen org's schema."""

    overview_title = ""
    # Where the changelist without an org goes: a list across orgs (admin URL name), or the
    # organisations with a note, for models the staff directory does not summarise.
    across_orgs = "admin:orgs_organization_changelist"
    across_orgs_note = ""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _rendered(self, org: Organization, view: Callable[[], HttpResponse]) -> HttpResponse:
        # Render inside the schema: the admin's querysets are lazy.
        with schema_context(org.schema_name):
            response = view()
            if isinstance(response, TemplateResponse):
                response.render()
        return response

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        org = _org_of(request)
        if org is None:
            if self.across_orgs_note:
                messages.info(request, self.across_orgs_note)
            return HttpResponseRedirect(reverse(self.across_orgs))
        context = {**(extra_context or {}), "title": f"{self.overview_title} of {org.slug}"}
        return self._rendered(org, lambda: super(TenantModelAdmin, self).changelist_view(request, context))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        org = _org_of(request)
        if org is None:
            messages.warning(request, "Choose an organisation first.")
            return HttpResponseRedirect(self._changelist_url())
        context = {**(extra_context or {}), "org": org}
        return self._rendered(
            org, lambda: super(TenantModelAdmin, self).change_view(request, object_id, form_url, context)
        )

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        org = _org_of(request)
        if org is None:
            return HttpResponseRedirect(self._changelist_url())
        return self._rendered(
            org, lambda: super(TenantModelAdmin, self).history_view(request, object_id, extra_context)
        )

    def _changelist_url(self, org: Organization | None = None) -> str:
        meta = self.model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        return f"{url}?{urlencode({'schema': org.schema_name})}" if org is not None else url

    def _staff_each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        act: Callable[[Any, Any], Any],
        done: str,
    ) -> None:
        """Apply a service to each selected row as the staff user; report successes and refusals."""
        org = _org_of(request)
        if org is None:
            messages.error(request, "Choose an organisation first.")
            return
        actor = staff_actor(request, org)
        count = 0
        for obj in queryset:
            try:
                act(actor, obj)
                count += 1
            except FlotillaError as error:
                messages.error(request, f"{obj}: {error.message}")
        if count:
            messages.success(request, done.format(count=count, org=org.slug))


class NodePoolInline(admin.TabularInline):  # type: ignore[type-arg]
    model = NodePool
    extra = 0
    fields = ("name", "size", "count", "labels", "taints", "removing")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CloudResourceInline(admin.TabularInline):  # type: ignore[type-arg]
    model = CloudResource
    extra = 0
    fields = ("kind", "name", "pool_name", "provider_id", "state", "updated_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Cluster)
class ClusterAdmin(TenantModelAdmin):
    overview_title = "Clusters"
    across_orgs = "admin:directory_clusterentry_changelist"
    list_display = [
        "name",
        "status",
        "provider",
        "region",
        "version",
        "observed_version",
        "nodes",
        "created_at",
        "deleted_at",
    ]
    list_filter = [OrgSchemaFilter, "status"]
    search_fields = ["name", "external_name"]
    list_select_related = ["provider"]
    exclude = ["kubeconfig", "bootstrap_secret"]
    inlines = [NodePoolInline, CloudResourceInline]
    actions = ["delete_through_services"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cluster]:
        qs: QuerySet[Cluster] = super().get_queryset(request)
        return qs.defer("kubeconfig", "bootstrap_secret", "provider__credentials").annotate(
            _ready=Count("nodes", filter=Q(nodes__ready=True), distinct=True),
            _nodes=Count("nodes", distinct=True),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Cluster._meta.fields if f.name not in self.exclude]

    @admin.display(description="Nodes ready")
    def nodes(self, obj: Any) -> str:
        return f"{obj._ready}/{obj._nodes}"

    @admin.action(description="Delete selected clusters (imported ones are forgotten)")
    def delete_through_services(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        self._staff_each(
            request,
            queryset.select_related("provider"),
            cluster_services.delete_cluster,
            "Deletion queued for {count} cluster(s) of {org}.",
        )


class OperationTransitionInline(admin.TabularInline):  # type: ignore[type-arg]
    """The operation's status moves, as the engine wrote them (read-only)."""

    model = OperationTransition
    extra = 0
    can_delete = False
    fields = ["at", "from_status", "to_status", "reason", "worker"]
    readonly_fields = ["at", "from_status", "to_status", "reason", "worker"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Operation)
class OperationAdmin(TenantModelAdmin):
    overview_title = "Operations"
    across_orgs = "admin:directory_operationentry_changelist"
    list_display = [
        "id",
        "cluster",
        "kind_label",
        "status",
        "progress",
        "step",
        "attempts",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = [OrgSchemaFilter, "status", "kind"]
    search_fields = ["cluster__name", "step", "error", "requested_by"]
    list_select_related = ["cluster"]
    actions = ["retry", "cancel"]
    inlines = [OperationTransitionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Operation._meta.fields]

    @admin.display(description="Kind", ordering="kind")
    def kind_label(self, obj: Operation) -> str:
        # Kinds are registered with the engine (clusters' and apps'), not field choices.
        return obj.get_kind_display()

    @admin.action(description="Retry selected operations (failed or cancelled)")
    def retry(self, request: HttpRequest, queryset: QuerySet[Operation]) -> None:
        self._staff_each(
            request, queryset, cluster_services.retry_operation, "Retry queued for {count} operation(s)."
        )

    @admin.action(description="Cancel selected operations (queued or running)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Operation]) -> None:
        self._staff_each(
            request, queryset, cluster_services.cancel_operation, "Cancelled {count} operation(s)."
        )


class AppRevisionInline(admin.TabularInline):  # type: ignore[type-arg]
    """The app's recorded changes, newest first (read-only; the secrets they ran with are not shown)."""

    model = AppRevision
    extra = 0
    can_delete = False
    # Never "secrets": what a revision ran with stays encrypted and off every page.
    fields = ["number", "kind", "changes", "rolled_back_to", "created_by", "created_at"]
    readonly_fields = ["number", "kind", "changes", "rolled_back_to", "created_by", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AppRevision]:
        qs: QuerySet[AppRevision] = super().get_queryset(request)
        return qs.defer("secrets", "spec")


@admin.register(App)
class AppAdmin(TenantModelAdmin):
    overview_title = "Apps"
    across_orgs = "admin:directory_appentry_changelist"
    list_display = [
        "name",
        "namespace",
        "cluster",
        "status",
        "image",
        "replicas",
        "revision",
        "adopted",
        "created_at",
        "deleted_at",
    ]
    list_filter = [OrgSchemaFilter, "status", "kind", "adopted"]
    search_fields = ["name", "namespace", "cluster__name"]
    list_select_related = ["cluster"]
    exclude = ["secrets"]
    inlines = [AppRevisionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[App]:
        qs: QuerySet[App] = super().get_queryset(request)
        return qs.defer("secrets", "cluster__kubeconfig", "cluster__bootstrap_secret")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in App._meta.fields if f.name not in self.exclude]

    @admin.display(description="Ready/desired")
    def replicas(self, obj: App) -> str:
        return f"{obj.ready_replicas}/{obj.desired_replicas}"


@admin.register(ProviderAccount)
class ProviderAccountAdmin(TenantModelAdmin):
    overview_title = "Provider accounts"
    across_orgs_note = "Provider accounts are listed one organisation at a time: open an organisation's."
    list_display = ["name", "kind", "validated_at", "created_at", "live_clusters"]
    list_filter = [OrgSchemaFilter, "kind"]
    search_fields = ["name"]
    exclude = ["credentials"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProviderAccount]:
        qs: QuerySet[ProviderAccount] = super().get_queryset(request)
        return qs.defer("credentials").annotate(
            _clusters=Count("clusters", filter=Q(clusters__deleted_at__isnull=True))
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in ProviderAccount._meta.fields if f.name != "credentials"]

    @admin.display(description="Live clusters")
    def live_clusters(self, obj: Any) -> int:
        return int(obj._clusters)
