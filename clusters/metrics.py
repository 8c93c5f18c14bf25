"""Prometheus collectors of the clusters app, read at scrape time (registered in apps.ready)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from clusters.choices import ClusterStatus, OperationStatus
from orgs.models import Organization


class ClustersCollector(Collector):
    """Clusters by status and operations by kind and status, across every org, in one query."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        clusters = GaugeMetricFamily("flotilla_clusters", "Live clusters by status", labels=["status"])
        operations = GaugeMetricFamily(
            "flotilla_cluster_operations_active",
            "Queued or running cluster operations",
            labels=["kind", "status"],
        )
        schemas = list(
            Organization.objects.exclude(schema_name="public").values_list("schema_name", flat=True)
        )
        cluster_counts = {status: 0 for status in ClusterStatus.values if status != ClusterStatus.DELETED}
        operation_counts: dict[tuple[str, str], int] = {}
        if schemas:
            quoted = [connection.ops.quote_name(schema) for schema in schemas]
            cluster_sql = " UNION ALL ".join(
                f"SELECT 'c', status, '', count(*) FROM {s}.clusters_cluster "
                "WHERE deleted_at IS NULL GROUP BY status"
                for s in quoted
            )
            operation_sql = " UNION ALL ".join(
                f"SELECT 'o', status, kind, count(*) FROM {s}.clusters_operation "
                f"WHERE status IN ('{OperationStatus.QUEUED}', '{OperationStatus.RUNNING}') "
                "GROUP BY status, kind"
                for s in quoted
            )
            with connection.cursor() as cursor:
                cursor.execute(f"{cluster_sql} UNION ALL {operation_sql}")
                for family, status, kind, count in cursor.fetchall():
                    if family == "c":
                        cluster_counts[status] = cluster_counts.get(status, 0) + count
                    else:
                        operation_counts[(kind, status)] = operation_counts.get((kind, status), 0) + count
        for status, count in sorted(cluster_counts.items()):
            clusters.add_metric([status], count)
        for (kind, status), count in sorted(operation_counts.items()):
            operations.add_metric([kind, status], count)
        yield clusters
        yield operations
