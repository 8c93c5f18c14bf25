"""Create (once) the demo organisation and a staff admin, and print how to sign in."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orgs.choices import ActorSource
from orgs.models import Organization, User
from orgs.services.organizations import create_organization

DEMO_EMAIL = "demo@flotilla.local"
ADMIN_EMAIL = "admin@flotilla.local"


class Command(BaseCommand):
    help = "Create the demo org (owner demo@flotilla.local) and a staff admin if missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the portal is served")

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("FLOTILLA_DEMO_PASSWORD") or secrets.token_urlsafe(12)
        created = []
        for email, staff in ((ADMIN_EMAIL, True), (DEMO_EMAIL, False)):
            user = User.objects.filter(email=email).first()
            if user is None:
                if staff:
                    User.objects.create_superuser(email=email, password=password, full_name="Flotilla admin")
                else:
                    User.objects.create_user(email=email, password=password, full_name="Demo user")
                created.append(email)
        if not Organization.objects.filter(slug="demo").exists():
            create_organization(
                user=User.objects.get(email=DEMO_EMAIL),
                name="Demo",
                slug="demo",
                ip=None,
                source=ActorSource.SYSTEM,
            )
        url = options["url"].rstrip("/")
        self.stdout.write(self.style.SUCCESS(f"\nFlotilla is at {url}/"))
        self.stdout.write(f"  Portal:  {url}/o/demo/   (sign in as {DEMO_EMAIL})")
        self.stdout.write(f"  Admin:   {url}/admin/    (sign in as {ADMIN_EMAIL})")
        if created:
            self.stdout.write(f"  Password for {', '.join(created)}: {password}")
        else:
            self.stdout.write("  Accounts existed already; their passwords are unchanged.")
