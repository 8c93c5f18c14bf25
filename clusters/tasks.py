"""django-q2 entry points of the clusters app: thin, take ids, run inside the org's schema.

`run_operation` and `refresh_cluster_health` are enqueued with `config.tasks.enqueue` (which
re-enters the org's schema); `tick` is the periodic schedule and runs once in the public schema,
fanning out per org.
"""

from __future__ import annotations

from clusters.services import health, reconcile


def run_operation(operation_id: int) -> str:
    """Drive one operation of the current org (see clusters.services.reconcile)."""
    return reconcile.run_operation(operation_id)


def refresh_cluster_health(cluster_id: int) -> str:
    """Health check of one cluster of the current org (see clusters.services.health)."""
    return health.refresh_cluster_health(cluster_id)


def tick() -> dict[str, int]:
    """Every minute: requeue operations whose worker died, and queue due health checks."""
    counts = reconcile.sweep_operations()
    counts["health_checks"] = health.refresh_all_health()
    return counts
