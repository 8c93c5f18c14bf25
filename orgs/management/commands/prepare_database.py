"""Bring the whole database up to date: public schema, the org template schema, every org, cache.

Run it after every deploy (the README's commands do). New orgs are cloned from the
template schema, so it must always be migrated before any org is created.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from orgs.services.schemas import ensure_template_schema


class Command(BaseCommand):
    help = "Migrate the public schema, the org template schema and every org schema."

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options.get("verbosity", 1))
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        ensure_template_schema(verbosity=verbosity)
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity)
        call_command("createcachetable", verbosity=verbosity)
        self.stdout.write(self.style.SUCCESS("Database ready."))
