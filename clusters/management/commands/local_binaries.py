"""`manage.py local_binaries [build|status]`: prepare the local provider's Kubernetes binaries."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clusters.local import binaries


class Command(BaseCommand):
    help = "Build (once, cached outside the checkout) or report the local provider's binaries."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", nargs="?", default="build", choices=["build", "status"])

    def handle(self, *args: Any, **options: Any) -> None:
        code = binaries.main([options["action"]])
        if code == 1 and options["action"] == "build":
            raise CommandError("building the local provider's binaries failed (see above)")
        if code == 1:
            raise CommandError("some binaries are missing; run `manage.py local_binaries build`")
