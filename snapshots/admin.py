"""Staff pages of one org's storage locations, snapshots and restores (read-only).

These rows live in each org's schema: as for clusters (clusters.admin), a page runs inside the
org chosen with `?schema=`; without one, snapshots and restores lead to the staff directory's
lists across orgs (snapshots.directory.admin), storage locations to the organisations. A
location's credentials are never shown nor read (the column is excluded and deferred), and a
restore item's field diff (which may hold a Secret's values) is left off the report.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from clusters.admin import OrgSchemaFilter, TenantModelAdmin
from snapshots.choices import ItemAction, ItemResult
from snapshots.models import Restore, RestoreItem, Snapshot, StorageLocation

# Items of a report shown on a restore's page: a report has one per object (thousands), and
# the failed ones are what staff open it for.
REPORT_ITEMS_SHOWN = 200
# Never "diff": a preview's diff of a Secret holds its values.
REPORT_FIELDS: tuple[str, ...] = (
    "seq",
    "kind",
    "api_version",
    "namespace",
    "source_namespace",
    "name",
    "action",
    "result",
    "message",
)


@admin.register(StorageLocation)
class StorageLocationAdmin(TenantModelAdmin):
    overview_title = "Storage locations"
    across_orgs_note = "Storage locations are listed one organisation at a time: open an organisation's."
    list_display = ["name", "kind", "bucket", "region", "is_default", "checked_at", "check_error"]
    list_filter = [OrgSchemaFilter, "kind"]
    search_fields = ["name", "bucket"]
    exclude = ["credentials"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[StorageLocation]:
        qs: QuerySet[StorageLocation] = super().get_queryset(request)
        return qs.defer("credentials")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in StorageLocation._meta.fields if f.name != "credentials"]


@admin.register(Snapshot)
class SnapshotAdmin(TenantModelAdmin):
    overview_title = "Snapshots"
    across_orgs = "admin:snapshots_directory_snapshotentry_changelist"
    list_display = [
        "name",
        "cluster_name",
        "location",
        "status",
        "object_count",
        "stored_size",
        "created_at",
        "completed_at",
    ]
    list_filter = [OrgSchemaFilter, "status"]
    search_fields = ["name", "cluster_name"]
    list_select_related = ["location"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Snapshot]:
        qs: QuerySet[Snapshot] = super().get_queryset(request)
        # Joined on the change page too (list_select_related is the changelist's only), so the
        # location's credentials and the cluster's kubeconfig are never loaded with them.
        joined = qs.select_related("location", "cluster")
        return joined.defer("location__credentials", "cluster__kubeconfig", "cluster__bootstrap_secret")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Snapshot._meta.fields]

    @admin.display(description="Stored", ordering="stored_bytes")
    def stored_size(self, obj: Snapshot) -> str:
        return str(filesizeformat(obj.stored_bytes))


class ReportFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """The first items of a report, failed ones first (the rest are in the API and the portal)."""

    def get_queryset(self) -> Any:
        if not hasattr(self, "_report"):
            failed_first = Case(
                When(result=ItemResult.FAILED, then=Value(0)),
                # A preview's conflicts and refusals are planned, not failed, but are what went wrong.
                When(action__in=[ItemAction.CONFLICT, ItemAction.FAIL], then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
            self._report = super().get_queryset().order_by(failed_first, "seq")[:REPORT_ITEMS_SHOWN]
        return self._report


class RestoreItemInline(admin.TabularInline):  # type: ignore[type-arg]
    """A restore's report: failed items first, at most REPORT_ITEMS_SHOWN (read-only)."""

    model = RestoreItem
    formset = ReportFormSet
    extra = 0
    can_delete = False
    verbose_name_plural = f"Report (failed items first; the first {REPORT_ITEMS_SHOWN})"
    fields = REPORT_FIELDS
    readonly_fields = REPORT_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[RestoreItem]:
        qs: QuerySet[RestoreItem] = super().get_queryset(request)
        return qs.defer("diff")


@admin.register(Restore)
class RestoreAdmin(TenantModelAdmin):
    overview_title = "Restores"
    across_orgs = "admin:snapshots_directory_restoreentry_changelist"
    list_display = ["id", "snapshot", "target", "mode", "status", "counts", "created_at", "completed_at"]
    list_filter = [OrgSchemaFilter, "status", "mode"]
    search_fields = ["snapshot__name", "target__name"]
    list_select_related = ["snapshot", "target"]
    inlines = [RestoreItemInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Restore]:
        qs: QuerySet[Restore] = super().get_queryset(request)
        joined = qs.select_related("snapshot", "target")
        return joined.defer("target__kubeconfig", "target__bootstrap_secret")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Restore._meta.fields]
