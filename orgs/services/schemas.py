"""The template schema new orgs are cloned from (TENANT_BASE_SCHEMA)."""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_exists

from orgs.tenancy import use_public_schema


def ensure_template_schema(verbosity: int = 0) -> None:
    """Create the template schema if missing and apply every tenant migration to it."""
    name = settings.TENANT_BASE_SCHEMA
    use_public_schema()
    if not schema_exists(name):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{name}"')
    call_command("migrate_schemas", tenant=True, schema_name=name, interactive=False, verbosity=verbosity)
    use_public_schema()
