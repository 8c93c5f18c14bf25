"""Staff lists across organisations: every cluster, every app, and every unfinished or failed
operation.

They read the directory's public-schema entries, so a page costs the same few queries whatever
the number of orgs. Each row links to its org and to the object's admin page inside the org's
schema (clusters.admin). Retry and cancel call the clusters services inside the org's schema
with a staff actor, so they are permission-checked and audited in that org's log.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django_tenants.utils import schema_context

from clusters.choices import AppStatus, ClusterStatus, OperationStatus
from clusters.directory.models import LISTED_OPERATION_STATUSES, AppEntry, ClusterEntry, OperationEntry
from clusters.models import Operation
from clusters.services import clusters as cluster_services
from orgs.admin import staff_actor
from orgs.exceptions import FlotillaError
from orgs.models import Organization

PER_PAGE = 50


class OrgFilter(admin.SimpleListFilter):
    """One org by slug, typed in (a list of every org would not survive a thousand of them)."""

    title = "organisation"
    parameter_name = "org"
    template = "directory/admin/org_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return []

    def has_output(self) -> bool:
        return True

    def choices(self, changelist: Any) -> Iterator[Any]:
        kept = [
            (name, value)
            for name, values in changelist.params.items()
            if name not in (self.parameter_name, "p")
            for value in (values if isinstance(values, list) else [values])
        ]
        yield {
            "value": self.value() or "",
            "kept": kept,
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
        }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        return queryset.filter(org__slug=value) if value else queryset


class LiveStatusFilter(admin.SimpleListFilter):
    """Rows not deleted by default (deleted ones stay for the record, one click away); a
    subclass names its status choices and the label of the default."""

    title = "status"
    parameter_name = "status"
    statuses: type[models.TextChoices]
    deleted: str
    live_label = "Not deleted"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", self.live_label), *self.statuses.choices, ("all", "All, deleted included")]

    def choices(self, changelist: Any) -> Iterator[Any]:
        current = self.value() or "live"
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}, remove=["p"]),
                "display": label,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value() or "live"
        if value == "all":
            return queryset
        if value == "live":
            return queryset.exclude(status=self.deleted)
        return queryset.filter(status=value)


class ClusterStatusFilter(LiveStatusFilter):
    """Live clusters by default."""

    statuses = ClusterStatus
    deleted = ClusterStatus.DELETED
    live_label = "Live (not deleted)"


class AppStatusFilter(LiveStatusFilter):
    """Apps not deleted by default."""

    statuses = AppStatus
    deleted = AppStatus.DELETED


class ActiveOperationFilter(admin.SimpleListFilter):
    """Clusters with a queued or running operation, or without."""

    title = "active operation"
    parameter_name = "active"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(active_operation_id__isnull=self.value() == "no")
        return queryset


class OperationStatusFilter(admin.SimpleListFilter):
    """Which of the listed statuses (queued, running, failed)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (value, label) for value, label in OperationStatus.choices if value in LISTED_OPERATION_STATUSES
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(status=self.value()) if self.value() else queryset


def _in_org(view: str, object_id: int, org: Organization) -> str:
    """An admin page of a tenant object, opened inside its org's schema (clusters.admin)."""
    return f"{reverse(view, args=[object_id])}?{urlencode({'schema': org.schema_name})}"


def _with_reason(status: str, reason: str) -> str:
    """A status, with the start of its reason under it when there is one."""
    if not reason:
        return status
    return format_html('{}<br><span class="help">{}</span>', status, reason[:100])


class DirectoryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only lists of entries; nothing here edits an entry (the services keep them in step)."""

    list_per_page = PER_PAGE
    list_select_related = ["org"]
    # The unfiltered total would be one more count over the whole table per page.
    show_full_result_count = False
    search_help_text = "Name, or the organisation's name or slug."

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Organisation", ordering="org__slug")
    def org_link(self, obj: Any) -> str:
        return format_html(
            '<a href="{}" data-org="{}">{}</a> '
            '<a href="?{}" class="help" title="Only this organisation">({})</a>',
            reverse("admin:orgs_organization_change", args=[obj.org_id]),
            obj.org.slug,
            obj.org.name,
            urlencode({"org": obj.org.slug}),
            obj.org.slug,
        )


@admin.register(ClusterEntry)
class ClusterEntryAdmin(DirectoryAdmin):
    list_display = [
        "cluster_link",
        "org_link",
        "status_display",
        "provider",
        "region",
        "versions",
        "nodes",
        "active_operation",
        "updated_at",
    ]
    list_filter = [ClusterStatusFilter, "provider_kind", ActiveOperationFilter, OrgFilter]
    search_fields = ["name", "org__name", "org__slug"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in ClusterEntry._meta.fields]

    @admin.display(description="Cluster", ordering="name")
    def cluster_link(self, obj: ClusterEntry) -> str:
        return format_html(
            '<a href="{}" data-cluster="{}">{}</a>',
            _in_org("admin:clusters_cluster_change", obj.cluster_id, obj.org),
            obj.name,
            obj.name,
        )

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj: ClusterEntry) -> str:
        return _with_reason(obj.get_status_display(), obj.status_reason)

    @admin.display(description="Provider", ordering="provider_kind")
    def provider(self, obj: ClusterEntry) -> str:
        return f"{obj.provider_name} ({obj.provider_kind})"

    @admin.display(description="Version (observed)")
    def versions(self, obj: ClusterEntry) -> str:
        if obj.observed_version and obj.observed_version != obj.version:
            return f"{obj.version or '—'} ({obj.observed_version})"
        return obj.version or obj.observed_version or "—"

    @admin.display(description="Nodes ready/observed (desired)")
    def nodes(self, obj: ClusterEntry) -> str:
        return f"{obj.nodes_ready}/{obj.nodes_total} ({obj.nodes_desired})"

    @admin.display(description="Active operation")
    def active_operation(self, obj: ClusterEntry) -> str:
        if obj.active_operation_id is None:
            return "—"
        return format_html(
            '<a href="{}">{} · {}</a>',
            _in_org("admin:clusters_operation_change", obj.active_operation_id, obj.org),
            obj.get_active_operation_kind_display(),
            obj.get_active_operation_status_display(),
        )


@admin.register(OperationEntry)
class OperationEntryAdmin(DirectoryAdmin):
    list_display = [
        "operation_link",
        "org_link",
        "cluster_link",
        "kind",
        "status",
        "step_display",
        "attempts_display",
        "error_display",
        "created_at",
        "finished_at",
    ]
    list_filter = [OperationStatusFilter, "kind", OrgFilter]
    search_fields = ["cluster_name", "org__name", "org__slug"]
    search_help_text = "Cluster name, or the organisation's name or slug."
    actions = ["retry", "cancel"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OperationEntry]:
        # Finished entries are kept (see the model) but are not what staff act on.
        return OperationEntry.objects.listed().select_related("org")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in OperationEntry._meta.fields]

    @admin.display(description="#", ordering="operation_id")
    def operation_link(self, obj: OperationEntry) -> str:
        return format_html(
            '<a href="{}" data-operation="{}">{}</a>',
            _in_org("admin:clusters_operation_change", obj.operation_id, obj.org),
            obj.operation_id,
            obj.operation_id,
        )

    @admin.display(description="Cluster", ordering="cluster_name")
    def cluster_link(self, obj: OperationEntry) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            _in_org("admin:clusters_cluster_change", obj.cluster_id, obj.org),
            obj.cluster_name,
        )

    @admin.display(description="Step")
    def step_display(self, obj: OperationEntry) -> str:
        return f"{obj.step[:80]} ({obj.progress}%)"

    @admin.display(description="Attempts")
    def attempts_display(self, obj: OperationEntry) -> str:
        return f"{obj.attempts}/{obj.max_attempts}"

    @admin.display(description="Error")
    def error_display(self, obj: OperationEntry) -> str:
        return obj.error[:120]

    def _act(self, request: HttpRequest, queryset: QuerySet[OperationEntry], act: Any, done: str) -> None:
        """Call a clusters service on each selected operation, inside its org, as the staff user."""
        by_org: dict[int, list[int]] = defaultdict(list)
        orgs: dict[int, Organization] = {}
        for entry in queryset.select_related("org"):
            by_org[entry.org_id].append(entry.operation_id)
            orgs[entry.org_id] = entry.org
        count = 0
        for org_id, operation_ids in by_org.items():
            org = orgs[org_id]
            actor = staff_actor(request, org)
            with schema_context(org.schema_name):
                for operation in Operation.objects.filter(pk__in=operation_ids).order_by("pk"):
                    try:
                        act(actor, operation)
                        count += 1
                    except FlotillaError as error:
                        messages.error(request, f"{org.slug} #{operation.pk}: {error.message}")
        if count:
            messages.success(request, done.format(count=count))

    @admin.action(description="Retry selected operations (failed)")
    def retry(self, request: HttpRequest, queryset: QuerySet[OperationEntry]) -> None:
        self._act(
            request, queryset, cluster_services.retry_operation, "Retry queued for {count} operation(s)."
        )

    @admin.action(description="Cancel selected operations (queued or running)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[OperationEntry]) -> None:
        self._act(request, queryset, cluster_services.cancel_operation, "Cancelled {count} operation(s).")


@admin.register(AppEntry)
class AppEntryAdmin(DirectoryAdmin):
    list_display = [
        "app_link",
        "org_link",
        "cluster_link",
        "namespace",
        "image_display",
        "status_display",
        "replicas",
        "revision",
        "adopted",
        "updated_at",
    ]
    list_filter = [AppStatusFilter, "kind", OrgFilter]
    search_fields = ["name", "cluster_name", "org__name", "org__slug"]
    search_help_text = "App or cluster name, or the organisation's name or slug."

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in AppEntry._meta.fields]

    @admin.display(description="App", ordering="name")
    def app_link(self, obj: AppEntry) -> str:
        return format_html(
            '<a href="{}" data-app="{}">{}</a>',
            _in_org("admin:clusters_app_change", obj.app_id, obj.org),
            obj.name,
            obj.name,
        )

    @admin.display(description="Cluster", ordering="cluster_name")
    def cluster_link(self, obj: AppEntry) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            _in_org("admin:clusters_cluster_change", obj.cluster_id, obj.org),
            obj.cluster_name,
        )

    @admin.display(description="Image")
    def image_display(self, obj: AppEntry) -> str:
        # A digest makes a reference long; the full one is on the app's page.
        return obj.image if len(obj.image) <= 80 else f"{obj.image[:77]}…"

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj: AppEntry) -> str:
        return _with_reason(obj.get_status_display(), obj.status_reason)

    @admin.display(description="Ready/desired")
    def replicas(self, obj: AppEntry) -> str:
        return f"{obj.ready_replicas}/{obj.desired_replicas}"
