"""django-q2 entry points of the clusters app: thin, take ids, run inside the org's schema.

`run_operation` (any kind of operation: the engine finds its job) and `refresh_cluster_health`
are enqueued with `config.tasks.enqueue` (which re-enters the org's schema); `tick` is the
periodic schedule and runs once in the public schema, fanning out per org.
"""

from __future__ import annotations

from clusters.engine import runner, sweeper
from clusters.services import health


def run_operation(operation_id: int) -> str:
    """One pass of the operations engine over an operation of the current org (clusters.engine)."""
    return runner.run_operation(operation_id)


def refresh_cluster_health(cluster_id: int) -> str:
    """Health check of one cluster of the current org (see clusters.services.health)."""
    return health.refresh_cluster_health(cluster_id)


def tick() -> dict[str, int]:
    """Every minute: requeue operations whose worker died or whose task was lost, queue what is due,
    and queue due health checks."""
    counts = sweeper.sweep()
    counts["health_checks"] = health.refresh_all_health()
    return counts
