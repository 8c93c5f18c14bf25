"""Organisations (tenants), users, memberships and roles, API tokens, invitations, quotas.

Owns the public-schema identity and access model and the permission matrix every other app
checks against. It does not own anything an organisation runs (clusters, networking,
snapshots, observability live in their own apps, inside each org's schema).
"""

from django.apps import AppConfig


class OrgsConfig(AppConfig):
    """Organisations, people and access."""

    name = "orgs"
    verbose_name = "Organisations and access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orgs import signals  # noqa: F401  (connects fan-out receivers)
        from orgs.api import schema  # noqa: F401  (registers the OpenAPI token scheme)
