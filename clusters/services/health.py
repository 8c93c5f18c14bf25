"""Observing a cluster: its nodes and version against its spec, its conditions, the periodic health check.

The reconcile loop asks `converged` whether an operation is done; `refresh_cluster_health`
(queued for every live cluster by `refresh_all_health`) sets Ready or Degraded with the reason.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context

from clusters import kube
from clusters.choices import (
    ACTIVE_OPERATION_STATUSES,
    CLUSTER_TRANSITIONS,
    LIVE_STATUSES,
    ClusterStatus,
    EventLevel,
    ProviderKind,
)
from clusters.models import Cluster, ClusterEvent, Node, NodePool, Operation
from clusters.providers.base import Outcome
from clusters.providers.local import ComponentsReport, LocalDriver
from clusters.providers.registry import driver_for
from clusters.services.app_status import observe_apps
from clusters.services.events import cluster_changed
from clusters.versions import KubeVersion
from config.tasks import enqueue
from orgs.exceptions import FlotillaError
from orgs.models import Organization

REFRESH_HEALTH = "clusters.tasks.refresh_cluster_health"
logger = logging.getLogger(__name__)


def converged(cluster: Cluster, *, managed: bool, trusted: bool = False) -> Outcome:
    """Whether the API answers with the desired nodes Ready (and version, for managed clusters).

    `trusted`: the driver runs the API itself (no outbound check, see clusters.kube)."""
    observation = kube.observe(cluster.kubeconfig_text(), trusted=trusted)
    sync_nodes(cluster, observation)
    if not managed:
        return Outcome.finished(f"{len(observation.nodes)} nodes found, Kubernetes {observation.version}")
    pools = list(NodePool.objects.filter(cluster=cluster))
    wanted = sum(p.count for p in pools if not p.removing)
    ready = sum(min(observation.ready_in_pool(p.name), p.count) for p in pools if not p.removing)
    extra = sum(max(0, observation.in_pool(p.name) - (0 if p.removing else p.count)) for p in pools)
    if KubeVersion.from_any(observation.version) != KubeVersion.from_any(cluster.version):
        return Outcome.wait(f"API server reports {observation.version}, waiting for {cluster.version}", 1.0)
    if ready < wanted or extra:
        message = f"{ready}/{wanted} nodes Ready" + (f", {extra} to remove" if extra else "")
        return Outcome.wait(message, 1.0, progress=50 + int(45 * ready / max(wanted, 1)))
    # Nodes Ready is not enough: kwok makes them so even when the controller-manager is dead.
    # (The driver's step restarts what is down; here the operation only waits for it.)
    report = control_plane_report(cluster, repair=False)
    if report is not None and report.problems:
        return Outcome.wait(f"Waiting for the control plane: {report.reason}", 2.0, progress=95)
    return Outcome.finished(f"All {wanted} nodes Ready on Kubernetes {observation.version}")


def sync_nodes(cluster: Cluster, observation: kube.Observation) -> None:
    """Make the Node rows match what the API reported (few queries, whatever the node count)."""
    now = timezone.now()
    seen = {n.name for n in observation.nodes}
    Node.objects.filter(cluster=cluster).exclude(name__in=seen).delete()
    Node.objects.bulk_create(
        [
            Node(
                cluster=cluster,
                name=n.name,
                pool_name=n.pool,
                ready=n.ready,
                kubelet_version=n.kubelet_version,
                cpu=n.cpu,
                memory=n.memory,
                internal_ip=n.internal_ip,
                observed_at=now,
            )
            for n in observation.nodes
        ],
        update_conflicts=True,
        unique_fields=["cluster", "name"],
        update_fields=[
            "pool_name",
            "ready",
            "kubelet_version",
            "cpu",
            "memory",
            "internal_ip",
            "observed_at",
        ],
    )
    if cluster.observed_version != observation.version:
        cluster.observed_version = observation.version
        cluster.save(update_fields=["observed_version", "updated_at"])


def control_plane_report(cluster: Cluster, *, repair: bool) -> ComponentsReport | None:
    """For a control plane this host runs (the local provider): every component alive and
    healthy, restarting those that are down when `repair`. None for other clusters."""
    driver = driver_for(cluster.provider)
    if not isinstance(driver, LocalDriver):
        return None
    return driver.check_components(cluster, repair=repair)


def conditions(
    *, api: bool, nodes_ready: bool, spec: bool, reason: str = "", components: bool | None = None
) -> list[dict[str, str]]:
    """The cluster's conditions as shown on its page and in the API (ComponentsHealthy: only
    for control planes Flotilla runs itself)."""
    now = timezone.now().isoformat()

    def item(kind: str, ok: bool) -> dict[str, str]:
        return {"type": kind, "status": "True" if ok else "False", "reason": "" if ok else reason, "at": now}

    items = [item("ApiReachable", api), item("NodesReady", nodes_ready), item("SpecReached", spec)]
    return items if components is None else [*items, item("ComponentsHealthy", components)]


def _observe_apps(schema: str, cluster: Cluster, trusted: bool) -> None:
    """Refresh the cluster's apps from the same check (one list call); an app problem is not a
    cluster problem, so a failure here is logged and the health check goes on."""
    try:
        client = kube.connect(cluster.kubeconfig_text(), trusted=trusted)
        observe_apps(schema, cluster, client)
    except kube.KubeError as exc:
        logger.warning("apps of cluster %s not observed: %s", cluster.pk, exc.message)


def refresh_cluster_health(cluster_id: int) -> str:
    """Check one cluster: API reachable, nodes Ready, spec reached, version. Ready or Degraded."""
    schema: str = connection.schema_name  # type: ignore[attr-defined]
    cluster = (
        Cluster.objects.select_related("provider").filter(pk=cluster_id, deleted_at__isnull=True).first()
    )
    if cluster is None or cluster.status not in LIVE_STATUSES:
        return "skipped"
    if Operation.objects.filter(
        cluster=cluster, subject_type="cluster", status__in=ACTIVE_OPERATION_STATUSES
    ).exists():
        return "busy"
    driver = driver_for(cluster.provider)
    managed = cluster.provider.kind != ProviderKind.EXISTING
    reason = ""
    api_ok = nodes_ok = spec_ok = False
    components_ok: bool | None = None
    try:
        try:
            observation = kube.observe(cluster.kubeconfig_text(), trusted=driver.trusted_api)
        except kube.KubeError:
            if not driver.recover(cluster):
                raise
            # The provider started it again; the next refresh (a minute later, or sooner when
            # asked) finds it answering. No worker waits through the start.
            ClusterEvent.objects.create(
                cluster=cluster,
                level=EventLevel.WARNING,
                message="API was down; the provider is starting its control plane again",
            )
            raise kube.KubeError("The API was down; its control plane is starting again.") from None
        api_ok = True
        sync_nodes(cluster, observation)
        _observe_apps(schema, cluster, driver.trusted_api)
        not_ready = [n.name for n in observation.nodes if not n.ready]
        nodes_ok = bool(observation.nodes) and not not_ready
        if not observation.nodes:
            reason = "The cluster has no nodes."
        elif not_ready:
            reason = f"{len(not_ready)} node(s) not Ready: {', '.join(sorted(not_ready)[:5])}"
        spec_ok = True
        if managed:
            for pool in NodePool.objects.filter(cluster=cluster, removing=False):
                have = observation.ready_in_pool(pool.name)
                if have != pool.count:
                    spec_ok = False
                    reason = reason or f"Pool {pool.name} has {have} Ready nodes of {pool.count}."
            if observation.version != cluster.version:
                spec_ok = False
                reason = reason or f"API server runs {observation.version}, the spec says {cluster.version}."
        report = control_plane_report(cluster, repair=True)
        if report is not None:
            components_ok = not report.problems
            if report.problems:
                reason = report.reason  # a dead component explains whatever else looks wrong
            for action in report.actions:
                ClusterEvent.objects.create(
                    cluster=cluster, level=EventLevel.WARNING, message=f"Control plane: {action}"
                )
    except (FlotillaError, kube.KubeError) as exc:
        reason = exc.message
    healthy = api_ok and nodes_ok and spec_ok and components_ok is not False
    target = ClusterStatus.READY if healthy else ClusterStatus.DEGRADED
    with transaction.atomic():
        cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
        changed = cluster.status != target and target in CLUSTER_TRANSITIONS[cluster.status]
        if changed:
            cluster.transition_to(target, reason)
        elif cluster.status == target:
            cluster.status_reason = reason
        cluster.conditions = conditions(
            api=api_ok, nodes_ready=nodes_ok, spec=spec_ok, reason=reason, components=components_ok
        )
        cluster.health_checked_at = timezone.now()
        cluster.save(
            update_fields=["status", "status_reason", "conditions", "health_checked_at", "updated_at"]
        )
        if changed:
            event = ClusterEvent.objects.create(
                cluster=cluster,
                level=EventLevel.INFO if healthy else EventLevel.WARNING,
                message=f"Health check: {ClusterStatus(target).label}" + (f" ({reason})" if reason else ""),
            )
            cluster_changed(schema, cluster, event=event)
    return target


def refresh_all_health(min_age: float = 50) -> int:
    """Queue a health check of every live cluster not checked in the last `min_age` seconds."""
    queued = 0
    cutoff = timezone.now() - timedelta(seconds=min_age)
    for org in Organization.objects.filter(suspended_at__isnull=True).only("schema_name"):
        with schema_context(org.schema_name):
            due = Cluster.objects.filter(deleted_at__isnull=True, status__in=LIVE_STATUSES).filter(
                Q(health_checked_at__isnull=True) | Q(health_checked_at__lt=cutoff)
            )
            for cluster_id in due.values_list("pk", flat=True):
                enqueue(REFRESH_HEALTH, schema_name=org.schema_name, cluster_id=cluster_id)
                queued += 1
    return queued
