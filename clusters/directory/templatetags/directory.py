"""The admin app list's view of the staff directory (see config/templates/admin/app_list.html)."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.db import connection
from django_tenants.utils import get_app_label, get_public_schema_name

from clusters.directory.registry import directory_app_labels, lists_for

register = template.Library()


def _in_public_schema() -> bool:
    return bool(getattr(connection, "schema_name", get_public_schema_name()) == get_public_schema_name())


def _tenant_only(app_label: str) -> bool:
    shared = {get_app_label(app) for app in settings.SHARED_APPS}
    tenant = {get_app_label(app) for app in settings.TENANT_APPS}
    return app_label in tenant and app_label not in shared


@register.simple_tag
def directory_lists(app_label: str, counts: bool = False) -> list[dict[str, Any]] | None:
    """For a tenant-only app seen from the public schema: its staff lists (with counts by status
    when `counts`, one query each); None for any other app, which is listed as usual."""
    if not _in_public_schema() or not _tenant_only(app_label):
        return None
    found = []
    for entry in lists_for(app_label):
        by_status = entry.counts() if counts else []
        found.append(
            {
                "label": entry.label,
                "url": entry.url(),
                "model_name": entry.model._meta.model_name,
                "total": sum(n for _, _, n in by_status),
                "counts": [{"value": v, "label": label, "count": n} for v, label, n in by_status],
            }
        )
    return found


@register.filter
def is_directory_app(app_label: str) -> bool:
    """The directory's own app, whose lists are shown under the tenant apps they stand for (seen
    from an org's schema, on its admin pages, those apps list their own models instead)."""
    return _in_public_schema() and app_label in directory_app_labels()
