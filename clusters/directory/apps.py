"""The staff directory (public schema): one row per cluster, operation and app of every org.

Owns the entry models, their sync from the org schemas and the staff lists across orgs. It
owns no tenant data: every entry is a copy, rebuilt from the org schemas by
`manage.py rebuild_directory`.
"""

from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    """Staff lists across organisations."""

    name = "clusters.directory"
    label = "directory"
    verbose_name = "Across organisations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clusters.directory.models import AppEntry, ClusterEntry, OperationEntry
        from clusters.directory.registry import DirectoryList, register_list
        from clusters.directory.services import follow_operation, rebuild_apps, rebuild_org
        from clusters.engine.signals import operation_moved

        # Every status move of the operations engine (claim, wait, success...) reaches the entry.
        operation_moved.connect(follow_operation, dispatch_uid="directory.follow_operation")

        register_list(
            DirectoryList(app_label="clusters", label="Clusters", model=ClusterEntry, rebuild=rebuild_org)
        )
        register_list(
            DirectoryList(
                app_label="clusters",
                label="Operations (unfinished or failed)",
                model=OperationEntry,
                rebuild=rebuild_org,
            )
        )
        register_list(DirectoryList(app_label="clusters", label="Apps", model=AppEntry, rebuild=rebuild_apps))
