"""Snapshots of whole clusters, restore, clone, migrate, schedules, retention, storage, verification.

Builds on clusters (its operations engine, its Kubernetes gateway, its clusters as sources and
targets); it does not own cluster lifecycle. Deleting a cluster never deletes its snapshots.
"""

from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    """Snapshots and disaster recovery."""

    name = "snapshots"
    verbose_name = "Snapshots"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orgs.navigation import Section, register_section
        from orgs.permissions import register_actions
        from snapshots.permissions import MATRIX, Action

        register_actions(MATRIX)
        register_section(Section("Snapshots", "snapshots:list", Action.SNAPSHOT_VIEW))

        from snapshots.services.jobs import register_snapshot_jobs

        register_snapshot_jobs()
