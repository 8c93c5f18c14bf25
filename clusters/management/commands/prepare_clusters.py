"""`manage.py prepare_clusters`: what the clusters app needs after every deploy.

- the periodic `clusters.tasks.tick` schedule (sweeper of dead operations, health checks);
- every active org has its local provider account, so the local provider is ready to use;
- every unfinished operation is in the engine's dispatch index (after an upgrade or a restore).
- the staff directory is refilled from every org (`rebuild_directory`).
Idempotent; scripts/run.sh and scripts/test.sh run it after `prepare_database`.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django_q.models import Schedule
from django_tenants.utils import schema_context

from clusters.choices import ProviderKind
from clusters.engine.sweeper import index_unfinished
from clusters.models import ProviderAccount
from clusters.services.providers import ensure_local_provider
from orgs.actors import Actor
from orgs.choices import ActorSource
from orgs.models import Organization

TICK = "clusters.tasks.tick"


class Command(BaseCommand):
    help = "Register the clusters schedules and give every org its local provider account."

    def handle(self, *args: Any, **options: Any) -> None:
        Schedule.objects.update_or_create(
            name="clusters tick",
            defaults={
                "func": TICK,
                "schedule_type": Schedule.MINUTES,
                "minutes": 1,
                "repeats": -1,
            },
        )
        made = 0
        for org in Organization.objects.exclude(schema_name="public"):
            with schema_context(org.schema_name):
                if not ProviderAccount.objects.filter(kind=ProviderKind.LOCAL).exists():
                    ensure_local_provider(Actor.system(org, ActorSource.SYSTEM))
                    made += 1
        indexed = index_unfinished()
        call_command("rebuild_directory", stdout=self.stdout, verbosity=options.get("verbosity", 1))
        self.stdout.write(
            self.style.SUCCESS(
                f"Clusters ready (tick scheduled; {made} local provider(s) added; "
                f"{indexed} unfinished operation(s) indexed)."
            )
        )
