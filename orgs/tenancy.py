"""Switching the database connection between the public schema and an org's schema.

The one typed doorway to django-tenants' connection methods, so the rest of the code
never reaches for them directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.db import connection

if TYPE_CHECKING:
    from orgs.models import Organization


def _conn() -> Any:
    return cast(Any, connection)


def use_public_schema() -> None:
    """Point the connection at the public schema."""
    _conn().set_schema_to_public()


def use_org_schema(org: Organization) -> None:
    """Point the connection at the org's schema (public stays on the search path)."""
    _conn().set_tenant(org)


def current_schema() -> str:
    """The schema the connection is pointed at."""
    return str(_conn().schema_name)
