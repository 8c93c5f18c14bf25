"""The audit log for staff: the platform log, or any one org's, chosen with ?schema=."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django_tenants.utils import get_public_schema_name, schema_context

from orgs.audit.models import AuditEntry
from orgs.models import Organization


class SchemaFilter(admin.SimpleListFilter):
    """Which log to read: the platform's or an organisation's."""

    title = "organisation"
    parameter_name = "schema"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        with schema_context(get_public_schema_name()):
            orgs = list(
                Organization.objects.exclude(schema_name=get_public_schema_name()).values_list(
                    "schema_name", "slug"
                )
            )
        return [(schema, slug) for schema, slug in orgs]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset  # the schema itself is switched in changelist_view


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["created_at", "org_slug", "actor_label", "source", "ip", "action", "object_repr"]
    list_filter = [SchemaFilter, "source"]
    search_fields = ["action", "actor_label", "object_repr"]
    date_hierarchy = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _schema(self, request: HttpRequest) -> str:
        wanted = request.GET.get("schema", "")
        with schema_context(get_public_schema_name()):
            if wanted and Organization.objects.filter(schema_name=wanted).exists():
                return str(wanted)
        return str(get_public_schema_name())

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Render inside the chosen schema: the changelist's querysets are lazy.
        with schema_context(self._schema(request)):
            response = super().changelist_view(request, extra_context)
            if hasattr(response, "render"):
                response.render()
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        with schema_context(self._schema(request)):
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()
        return response
