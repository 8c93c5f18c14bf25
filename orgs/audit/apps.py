"""The append-only audit log.

Installed in the public schema (platform-level actions by staff) and in every org schema
(everything done in or to that organisation). Rows are written only by
orgs.services.audit.record_action and can never be updated or deleted (a database trigger
refuses it); dropping an org's schema is the only way its log goes.
"""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Audit log, one table per schema."""

    name = "orgs.audit"
    label = "audit"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"
