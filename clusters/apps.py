"""Providers and credentials, clusters, node pools, nodes, their lifecycle, and workloads.

Owns talking to cloud providers (clusters/providers/) and to Kubernetes API servers
(clusters/kube.py), and the local provider's runtime (clusters/local/). It does not own
networking objects, snapshots or observability, which build on the clusters it manages.
"""

from django.apps import AppConfig


class ClustersConfig(AppConfig):
    """Clusters and their providers."""

    name = "clusters"
    verbose_name = "Clusters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clusters.permissions import MATRIX, Action
        from orgs.navigation import AdminLink, Section, register_admin_link, register_section
        from orgs.permissions import register_actions

        register_actions(MATRIX)
        register_admin_link(AdminLink("clusters", "admin:clusters_cluster_changelist"))
        register_admin_link(AdminLink("operations", "admin:clusters_operation_changelist"))
        register_admin_link(AdminLink("apps", "admin:clusters_app_changelist"))
        register_section(Section("Clusters", "clusters:list", Action.CLUSTER_VIEW))
        register_section(Section("Apps", "clusters:apps", Action.APP_VIEW))
        register_section(Section("Providers", "clusters:providers", Action.PROVIDER_VIEW))

        from clusters.metrics import ClustersCollector
        from config.metrics import register_collector

        register_collector(ClustersCollector())

        from clusters.services.app_jobs import register_app_jobs
        from clusters.services.lifecycle import register_cluster_jobs

        register_cluster_jobs()
        register_app_jobs()
