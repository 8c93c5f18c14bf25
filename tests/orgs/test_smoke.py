"""The smallest end-to-end checks: an org has its own schema and the portal answers."""

from django.db import connection

from orgs.models import Organization


def test_org_has_schema(org_a: Organization) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname=%s", [org_a.schema_name])
        assert cursor.fetchone() == (1,)
