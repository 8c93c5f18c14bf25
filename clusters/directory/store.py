"""The one way directory entries are written: a guarded upsert in the public schema.

An entry is a copy of tenant rows read at some instant (`observed_at`, the database's clock).
Two syncs of one object may race (a worker's and a web request's); the statement below keeps,
for each entry, the newest read, so a slow sync that read an older state never overwrites a
newer one. The table is named with the public schema, so it does not matter which org's
search path the connection is on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from django.db import connection, models
from django_tenants.utils import get_public_schema_name


def upsert(
    model: type[models.Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str] | None = None,
    guard: str = "observed_at",
) -> None:
    """Insert or update `rows` (field name → value, the same fields in each) in one statement.

    On a conflict on `key`, the `update` fields (default: all but the key) are set only when the
    row's `guard` is not newer than the stored one's.
    """
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    names = list(rows[0])
    fields = [cast("models.Field[Any, Any]", meta.get_field(name)) for name in names]
    columns = {name: quote(str(field.column)) for name, field in zip(names, fields, strict=True)}
    table = f"{quote(get_public_schema_name())}.{quote(meta.db_table)}"
    stored = quote(meta.db_table)
    changed = [name for name in (update if update is not None else names) if name not in key]
    assignments = ", ".join(f"{columns[name]} = EXCLUDED.{columns[name]}" for name in changed)
    guard_column = quote(str(cast("models.Field[Any, Any]", meta.get_field(guard)).column))
    row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
    params = [
        field.get_db_prep_save(row[name], connection)
        for row in rows
        for name, field in zip(names, fields, strict=True)
    ]
    sql = (
        f"INSERT INTO {table} AS {stored} ({', '.join(columns.values())}) "
        f"VALUES {', '.join([row_sql] * len(rows))} "
        f"ON CONFLICT ({', '.join(columns[name] for name in key)}) DO UPDATE SET {assignments} "
        f"WHERE {stored}.{guard_column} IS NULL OR {stored}.{guard_column} <= EXCLUDED.{guard_column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
