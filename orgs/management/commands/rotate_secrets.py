"""`manage.py rotate_secrets`: re-encrypt every stored secret under the newest key.

Roll a key: put the new key first in FLOTILLA_ENCRYPTION_KEYS (keep the old one after it), run
this command, then drop the old key. It finds every EncryptedTextField of every installed model,
in the public schema or in every org's schema as the model's app lives there, and is safe to
run twice or to interrupt (each row is rewritten on its own).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.db.models import Model
from django_tenants.utils import get_public_schema_name, schema_context

from orgs.crypto import EncryptedTextField, rotate
from orgs.models import Organization


def _encrypted_fields(model: type[Model]) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


def _schemas_for(model: type[Model]) -> list[str]:
    app = model._meta.app_config.name if model._meta.app_config else ""
    if app in settings.SHARED_APPS and app not in settings.TENANT_APPS:
        return [get_public_schema_name()]
    return list(Organization.objects.exclude(schema_name="public").values_list("schema_name", flat=True))


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret (credentials, kubeconfigs, bootstrap secrets) under the newest key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rewritten = 0
        for model in apps.get_models():
            columns = _encrypted_fields(model)
            if not columns:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            pk = connection.ops.quote_name(model._meta.pk.column)
            for schema in _schemas_for(model):
                with schema_context(schema), connection.cursor() as cursor:
                    for column in columns:
                        col = connection.ops.quote_name(column)
                        cursor.execute(f"SELECT {pk}, {col} FROM {table} WHERE {col} LIKE 'fernet:%%'")
                        for row_id, token in cursor.fetchall():
                            with transaction.atomic():
                                cursor.execute(
                                    f"UPDATE {table} SET {col} = %s WHERE {pk} = %s AND {col} = %s",
                                    [rotate(token), row_id, token],
                                )
                            rewritten += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {rewritten} secret(s) under the newest key."))
