"""Snapshots of whole clusters, restore, clone, migrate, schedules, retention, storage, verification.

Builds on clusters (it asks clusters to provision targets); it does not own cluster lifecycle.
"""

from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    """Snapshots and disaster recovery."""

    name = "snapshots"
    verbose_name = "Snapshots"
    default_auto_field = "django.db.models.BigAutoField"
