"""`manage.py rebuild_directory`: refill the staff directory from every org's schema.

Idempotent; `prepare_clusters` runs it on every deploy, so an upgrade fills the directory and
any drift (a sync lost to a crash between commit and its after-commit callback) is repaired.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from clusters.directory.services import rebuild_directory


class Command(BaseCommand):
    help = (
        "Refill the staff directory (every registered list: clusters, operations, apps) from the org schemas."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        orgs, rows = rebuild_directory()
        if int(options.get("verbosity", 1)) < 1:
            return
        self.stdout.write(
            self.style.SUCCESS(f"Directory rebuilt from {orgs} organisation(s) ({rows} row(s) read).")
        )
