"""The staff directory's snapshots and restores (public schema): one entry per snapshot and per
restore of every org, so the admin lists them across orgs in one query.

Owns the entry models, their sync from the org schemas and the two staff lists. It owns no
tenant data: every entry is a copy, refilled from the org schemas by `manage.py
rebuild_directory`. The snapshots services call `sync_snapshot` / `sync_restore` after commit.
"""

from django.apps import AppConfig


class SnapshotsDirectoryConfig(AppConfig):
    """Staff lists of snapshots and restores across organisations."""

    name = "snapshots.directory"
    label = "snapshots_directory"
    verbose_name = "Snapshots across organisations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clusters.directory.registry import DirectoryList, register_list
        from orgs.navigation import AdminLink, register_admin_link
        from snapshots.directory.models import RestoreEntry, SnapshotEntry
        from snapshots.directory.services import rebuild_snapshots

        # One rebuild refills both lists (the registry runs each function once).
        register_list(
            DirectoryList(
                app_label="snapshots", label="Snapshots", model=SnapshotEntry, rebuild=rebuild_snapshots
            )
        )
        register_list(
            DirectoryList(
                app_label="snapshots", label="Restores", model=RestoreEntry, rebuild=rebuild_snapshots
            )
        )
        # Each org's row in the organisations list links to its own pages (snapshots.admin).
        register_admin_link(AdminLink("snapshots", "admin:snapshots_snapshot_changelist"))
        register_admin_link(AdminLink("restores", "admin:snapshots_restore_changelist"))
        register_admin_link(AdminLink("storage", "admin:snapshots_storagelocation_changelist"))
