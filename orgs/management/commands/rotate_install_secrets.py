"""`manage.py rotate_install_secrets`: new secrets for a single-host install (scripts/run.sh).

Stop Flotilla first (the web server and the worker read the secrets file when they start):

    manage.py rotate_install_secrets --encryption-key   # new key first, every secret re-encrypted,
                                                         # then the old key dropped
    manage.py rotate_install_secrets --secret-key        # the old one kept as a fallback
    manage.py rotate_install_secrets --metrics-token     # Prometheus must be given the new one

Secrets given through the environment (FLOTILLA_SECRET_KEY, ...) are not in the file: rotate
them where they are kept.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config import install_secrets


class Command(BaseCommand):
    help = "Rotate the generated secrets of a single-host install (stop Flotilla first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--secret-key", action="store_true", help="New Django secret key.")
        parser.add_argument(
            "--encryption-key", action="store_true", help="New encryption key; re-encrypts every secret."
        )
        parser.add_argument("--metrics-token", action="store_true", help="New /metrics bearer token.")

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = {k: options[k] for k in ("secret_key", "encryption_key", "metrics_token")}
        if not any(chosen.values()):
            raise CommandError("say what to rotate: --secret-key, --encryption-key and/or --metrics-token")
        data_dir = getattr(settings, "DATA_DIR", None)
        if data_dir is None:
            raise CommandError(
                "these settings do not read an install secrets file (use config.settings.host, "
                "as scripts/run.sh does)"
            )
        data = install_secrets.rotate(data_dir, **chosen)
        if options["encryption_key"]:
            # Re-encrypt under the new key in this process, then forget the old one.
            settings.FLOTILLA_ENCRYPTION_KEYS = data["encryption_keys"]
            call_command("rotate_secrets", stdout=self.stdout)
            install_secrets.rotate(data_dir, drop_old_encryption_keys=True)
        self.stdout.write(
            self.style.SUCCESS(
                f"Rotated {', '.join(k.replace('_', ' ') for k, v in chosen.items() if v)} in "
                f"{data_dir / install_secrets.FILE_NAME}; start Flotilla again."
            )
        )
