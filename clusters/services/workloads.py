"""Reads of what runs in a cluster: an app's pods, every workload with its pods, through the
Kubernetes gateway; and the cluster client every app job and read uses.

Pod lists are cached for a few seconds per (org schema, cluster, selector), so a page that many
people have open, or that refreshes on every live event, costs the cluster one list call per
interval, not one per request. Lists of apps never call the cluster: they read the replica counts
the rollouts and the observation keep on each app (clusters.services.app_status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection

from clusters import kube
from clusters.choices import LIVE_STATUSES
from clusters.models import App, Cluster
from clusters.permissions import Action, require
from clusters.providers.registry import driver_for
from clusters.workloads.pods import PodInfo, WorkloadInfo, pod_info, selects, workload_info
from orgs.actors import Actor
from orgs.exceptions import Conflict

# Seconds a pod list is reused.
POD_CACHE_SECONDS = 3
WORKLOAD_KINDS = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"))


def cluster_client(cluster: Cluster) -> kube.Client:
    """The gateway client of a cluster (Flotilla's own clusters are trusted, others checked)."""
    trusted = driver_for(cluster.provider).trusted_api
    return kube.connect(cluster.kubeconfig_text(), trusted=trusted)


def label_selector(selector: Mapping[str, str]) -> str:
    """A matchLabels mapping as a label selector string."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


def _require_reachable(cluster: Cluster) -> None:
    if cluster.deleted_at is not None or cluster.status not in LIVE_STATUSES:
        raise Conflict(
            f"Cluster {cluster.name} is {cluster.get_status_display().lower()}: its pods cannot be read."
        )


def _cache_key(cluster: Cluster, namespace: str | None, selector: str) -> str:
    schema = getattr(connection, "schema_name", "")
    return f"{schema}:pods:{cluster.pk}:{namespace or '*'}:{selector}"


def list_pods(
    cluster: Cluster, *, namespace: str | None = None, selector: str = "", fresh: bool = False
) -> list[PodInfo]:
    """Pods of a cluster (a namespace, a label selector), newest reading at most a few seconds old."""
    key = _cache_key(cluster, namespace, selector)
    if not fresh:
        cached = cache.get(key)
        if cached is not None:
            return [pod_info(p) for p in cached]
    raw = list(
        kube.list_items(
            cluster_client(cluster), ("v1", "Pod"), namespace=namespace, label_selector=selector or None
        )
    )
    slim = [_slim(p) for p in raw]
    cache.set(key, slim, POD_CACHE_SECONDS)
    return [pod_info(p) for p in slim]


def _slim(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a pod pod_info reads (what the cache keeps)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    return {
        "metadata": {
            key: meta[key]
            for key in (
                "name",
                "namespace",
                "labels",
                "creationTimestamp",
                "deletionTimestamp",
                "ownerReferences",
            )
            if key in meta
        },
        "spec": {
            "nodeName": spec.get("nodeName", ""),
            "containers": [
                {"name": c.get("name"), "image": c.get("image")} for c in spec.get("containers") or []
            ],
        },
        "status": pod.get("status") or {},
    }


def app_pods(actor: Actor, app: App) -> list[PodInfo]:
    """The pods of an app, as the cluster reports them."""
    require(actor, Action.APP_VIEW)
    _require_reachable(app.cluster)
    return list_pods(app.cluster, namespace=app.namespace, selector=label_selector(app.selector))


@dataclass(frozen=True)
class Workload:
    """A workload of a cluster, its pods, and the app it is (when Flotilla manages it)."""

    info: WorkloadInfo
    pods: list[PodInfo]
    app: App | None


def cluster_workloads(actor: Actor, cluster: Cluster, *, namespace: str | None = None) -> list[Workload]:
    """Every Deployment, StatefulSet and DaemonSet of the cluster with its pods, Flotilla's or not."""
    require(actor, Action.APP_VIEW)
    _require_reachable(cluster)
    client = cluster_client(cluster)
    infos: list[WorkloadInfo] = []
    for api_version, kind in WORKLOAD_KINDS:
        # A list's items carry no kind of their own.
        items = kube.list_items(client, (api_version, kind), namespace=namespace)
        infos.extend(workload_info({**obj, "kind": kind}) for obj in items)
    pods = list_pods(cluster, namespace=namespace)
    apps = {
        (a.namespace, a.name): a
        for a in App.objects.filter(cluster=cluster, deleted_at__isnull=True).only(
            "pk", "name", "namespace", "status", "cluster_id"
        )
    }
    found: list[Workload] = []
    for info in sorted(infos, key=lambda w: (w.namespace, w.name, w.kind)):
        mine = [p for p in pods if p.namespace == info.namespace and selects(info.selector, p.labels)]
        app = apps.get((info.namespace, info.name)) if info.kind == "Deployment" else None
        found.append(Workload(info, mine, app))
    return found
