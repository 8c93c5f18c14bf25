"""Staff lists across organisations: every snapshot (with its sizes) and every restore (with its
counts and failures).

They read the public-schema entries alone, so a page costs the same few queries whatever the
number of orgs or rows. Each row links to its org and to the object's admin page inside the
org's schema (snapshots.admin). Read-only: the snapshots services keep the entries in step.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from clusters.directory.admin import DirectoryAdmin, LiveStatusFilter, OrgFilter
from orgs.models import Organization
from snapshots.choices import SnapshotStatus
from snapshots.directory.models import RestoreEntry, SnapshotEntry


def _in_org(view: str, object_id: int, org: Organization) -> str:
    """An admin page of a tenant object, opened inside its org's schema."""
    return f"{reverse(view, args=[object_id])}?{urlencode({'schema': org.schema_name})}"


def _with_note(status: str, *notes: str) -> str:
    """A status, with the start of each note (reason, warning) under it."""
    shown = [note[:100] for note in notes if note]
    if not shown:
        return status
    lines = format_html("".join(['<br><span class="help">{}</span>'] * len(shown)), *shown)
    return format_html("{}{}", status, lines)


class SnapshotStatusFilter(LiveStatusFilter):
    """Snapshots not deleted by default."""

    statuses = SnapshotStatus
    deleted = SnapshotStatus.DELETED


@admin.register(SnapshotEntry)
class SnapshotEntryAdmin(DirectoryAdmin):
    list_display = [
        "snapshot_link",
        "org_link",
        "cluster_link",
        "location",
        "status_display",
        "object_count",
        "stored_size",
        "created_at",
        "completed_at",
    ]
    list_filter = [
        SnapshotStatusFilter,
        "location_kind",
        ("has_failures", admin.BooleanFieldListFilter),
        OrgFilter,
    ]
    search_fields = ["name", "cluster_name", "org__name", "org__slug"]
    search_help_text = "Snapshot or cluster name, or the organisation's name or slug."

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in SnapshotEntry._meta.fields]

    @admin.display(description="Snapshot", ordering="name")
    def snapshot_link(self, obj: SnapshotEntry) -> str:
        return format_html(
            '<a href="{}" data-snapshot="{}">{}</a>',
            _in_org("admin:snapshots_snapshot_change", obj.snapshot_id, obj.org),
            obj.name,
            obj.name,
        )

    @admin.display(description="Cluster", ordering="cluster_name")
    def cluster_link(self, obj: SnapshotEntry) -> str:
        if obj.cluster_id is None:  # the cluster's row is gone; the snapshot kept its name
            return obj.cluster_name or "—"
        return format_html(
            '<a href="{}">{}</a>',
            _in_org("admin:clusters_cluster_change", obj.cluster_id, obj.org),
            obj.cluster_name,
        )

    @admin.display(description="Location", ordering="location_name")
    def location(self, obj: SnapshotEntry) -> str:
        if not obj.location_name:
            return "—"
        return f"{obj.location_name} ({obj.location_kind})"

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj: SnapshotEntry) -> str:
        return _with_note(obj.get_status_display(), obj.reason, obj.warning)

    @admin.display(description="Stored", ordering="stored_bytes")
    def stored_size(self, obj: SnapshotEntry) -> str:
        return format_html(
            '<span title="{} bytes stored, {} bytes raw, {} chunks">{}</span>',
            obj.stored_bytes,
            obj.raw_bytes,
            obj.chunk_count,
            filesizeformat(obj.stored_bytes),
        )


@admin.register(RestoreEntry)
class RestoreEntryAdmin(DirectoryAdmin):
    list_display = [
        "restore_link",
        "org_link",
        "snapshot_link",
        "target_link",
        "mode",
        "status_display",
        "counts",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "mode", ("has_failures", admin.BooleanFieldListFilter), OrgFilter]
    search_fields = ["snapshot_name", "source_cluster_name", "target_name", "org__name", "org__slug"]
    search_help_text = "Snapshot, source or target cluster name, or the organisation's name or slug."

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in RestoreEntry._meta.fields]

    @admin.display(description="#", ordering="restore_id")
    def restore_link(self, obj: RestoreEntry) -> str:
        return format_html(
            '<a href="{}" data-restore="{}">{}</a>',
            _in_org("admin:snapshots_restore_change", obj.restore_id, obj.org),
            obj.restore_id,
            obj.restore_id,
        )

    @admin.display(description="Snapshot", ordering="snapshot_name")
    def snapshot_link(self, obj: RestoreEntry) -> str:
        source = f" ({obj.source_cluster_name})" if obj.source_cluster_name else ""
        return format_html(
            '<a href="{}">{}</a>{}',
            _in_org("admin:snapshots_snapshot_change", obj.snapshot_id, obj.org),
            obj.snapshot_name,
            source,
        )

    @admin.display(description="Target", ordering="target_name")
    def target_link(self, obj: RestoreEntry) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            _in_org("admin:clusters_cluster_change", obj.target_id, obj.org),
            obj.target_name,
        )

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj: RestoreEntry) -> str:
        return _with_note(obj.get_status_display(), obj.reason)

    @admin.display(description="Created/updated/skipped/failed")
    def counts(self, obj: RestoreEntry) -> str:
        return format_html(
            '<span data-counts="{}" title="{} unchanged, {} in conflict">{}/{}/{}/{}</span>',
            obj.restore_id,
            obj.unchanged,
            obj.conflict,
            obj.created,
            obj.updated,
            obj.skipped,
            obj.failed,
        )
