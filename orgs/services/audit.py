"""Writing the audit log: every mutating service calls record_action inside its transaction."""

from __future__ import annotations

from typing import Any

from django.db import models
from django_tenants.utils import get_public_schema_name, schema_context

from orgs.actors import Actor
from orgs.audit.models import AuditEntry
from orgs.models import Organization


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def record_action(
    actor: Actor,
    action: str,
    *,
    obj: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    org: Organization | None = None,
) -> AuditEntry:
    """Append one entry to the audit log of the org concerned (public schema if none)."""
    target_org = org if org is not None else actor.org
    schema = target_org.schema_name if target_org is not None else get_public_schema_name()
    with schema_context(schema):
        return AuditEntry.objects.create(
            actor_id=actor.user.pk if actor.user is not None else None,
            actor_label=actor.label[:254],
            token_prefix=actor.token.prefix if actor.token is not None else "",
            source=actor.source,
            ip=actor.ip,
            org_slug=target_org.slug if target_org is not None else "",
            action=action,
            object_type=obj._meta.label_lower if obj is not None else "",
            object_id=str(obj.pk) if obj is not None else "",
            object_repr=str(obj)[:200] if obj is not None else "",
            before=_jsonable(before) if before is not None else None,
            after=_jsonable(after) if after is not None else None,
        )
