"""Reads of the clusters app that cross a trust boundary. Call inside the org's schema."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from clusters.choices import ACTIVE_OPERATION_STATUSES, ProviderKind
from clusters.models import (
    App,
    AppRevision,
    Cluster,
    ClusterEvent,
    Node,
    NodePool,
    Operation,
    ProviderAccount,
)
from clusters.permissions import Action, require
from orgs.actors import Actor
from orgs.exceptions import NotFound


def list_provider_accounts(actor: Actor) -> QuerySet[ProviderAccount]:
    """The org's provider accounts."""
    require(actor, Action.PROVIDER_VIEW)
    return ProviderAccount.objects.annotate(
        cluster_count=Count("clusters", filter=Q(clusters__deleted_at__isnull=True))
    ).order_by("name")


def get_provider_account(actor: Actor, account_id: int) -> ProviderAccount:
    """One provider account of the org."""
    account = list_provider_accounts(actor).filter(pk=account_id).first()
    if account is None:
        raise NotFound("No such provider account.")
    return account


def launchable_provider_accounts(actor: Actor) -> list[ProviderAccount]:
    """The accounts a cluster can be created on; the local one offered unsaved until first used.

    Reading a page must not write, so the local account is made by the create that picks it
    (clusters.services.providers.ensure_local_provider), not by opening the form.
    """
    accounts = [a for a in list_provider_accounts(actor) if a.kind != ProviderKind.EXISTING]
    if not any(a.kind == ProviderKind.LOCAL or a.name == "local" for a in accounts):
        accounts.append(ProviderAccount(name="local", kind=ProviderKind.LOCAL))
    return sorted(accounts, key=lambda a: a.name)


def list_clusters(actor: Actor, *, include_deleted: bool = False) -> QuerySet[Cluster]:
    """The org's clusters with their provider, pools and active operation, in a fixed number of queries."""
    require(actor, Action.CLUSTER_VIEW)
    # Secrets are decrypted when a row is loaded: a listing never needs them (a caller that does
    # reads them with one more query).
    qs = Cluster.objects.select_related("provider").defer(
        "kubeconfig", "bootstrap_secret", "provider__credentials"
    )
    qs = qs.prefetch_related(
        Prefetch("pools", queryset=NodePool.objects.order_by("name")),
        Prefetch(
            "operations",
            queryset=Operation.objects.filter(
                subject_type="cluster", status__in=ACTIVE_OPERATION_STATUSES
            ).order_by("-id"),
            to_attr="active_operations",
        ),
    )
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    # Node counts as correlated subqueries, not a join with GROUP BY: the page's COUNT(*) then
    # drops them and reads only the clusters table.
    return qs.annotate(
        ready_nodes=_node_count(ready=True),
        node_total=_node_count(),
    ).order_by("name")


def _node_count(**where: object) -> Coalesce:
    nodes = Node.objects.filter(cluster=OuterRef("pk"), **where).order_by().values("cluster")
    counted = nodes.annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def get_cluster(actor: Actor, cluster_id: int) -> Cluster:
    """One live cluster of the org."""
    cluster = list_clusters(actor).filter(pk=cluster_id).first()
    if cluster is None:
        raise NotFound("No such cluster.")
    return cluster


def get_cluster_by_name(actor: Actor, name: str) -> Cluster:
    """One live cluster of the org, by name (the CLI's way of naming clusters)."""
    cluster = list_clusters(actor).filter(name=name).first()
    if cluster is None:
        raise NotFound(f"No cluster named {name!r}.")
    return cluster


def get_pool(actor: Actor, cluster: Cluster, pool_id: int) -> NodePool:
    """One pool of a cluster the actor can see."""
    require(actor, Action.CLUSTER_VIEW)
    pool = NodePool.objects.filter(cluster=cluster, pk=pool_id).first()
    if pool is None:
        raise NotFound("No such node pool.")
    return pool


def list_nodes(actor: Actor, cluster: Cluster) -> QuerySet[Node]:
    """Nodes of a cluster as last observed."""
    require(actor, Action.CLUSTER_VIEW)
    return Node.objects.filter(cluster=cluster).order_by("pool_name", "name")


def list_operations(actor: Actor, *, cluster: Cluster | None = None) -> QuerySet[Operation]:
    """Operations, newest first, optionally of one cluster."""
    require(actor, Action.CLUSTER_VIEW)
    qs = Operation.objects.select_related("cluster").order_by("-created_at", "-id")
    return qs.filter(cluster=cluster) if cluster is not None else qs


def get_operation(actor: Actor, operation_id: int) -> Operation:
    """One operation of the org."""
    operation = list_operations(actor).filter(pk=operation_id).first()
    if operation is None:
        raise NotFound("No such operation.")
    return operation


def cluster_events(actor: Actor, cluster: Cluster, *, limit: int = 100) -> list[ClusterEvent]:
    """The newest lines of a cluster's timeline."""
    require(actor, Action.CLUSTER_VIEW)
    return list(ClusterEvent.objects.filter(cluster=cluster).order_by("-created_at", "-id")[:limit])


# --- apps ------------------------------------------------------------------------------------


def list_apps(
    actor: Actor,
    *,
    cluster: Cluster | None = None,
    namespace: str | None = None,
    include_deleted: bool = False,
) -> QuerySet[App]:
    """The org's apps with their cluster and their newest operation, in a fixed number of queries
    (replica counts are the cached ones: no cluster is called)."""
    require(actor, Action.APP_VIEW)
    qs = (
        App.objects.select_related("cluster")
        .defer("secrets", "cluster__kubeconfig", "cluster__bootstrap_secret")
        .annotate(
            last_operation_id=Subquery(
                Operation.objects.filter(subject_type="app", subject_id=OuterRef("pk"))
                .order_by("-id")
                .values("pk")[:1]
            )
        )
    )
    if cluster is not None:
        qs = qs.filter(cluster=cluster)
    if namespace:
        qs = qs.filter(namespace=namespace)
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    return qs.order_by("cluster__name", "namespace", "name", "id")


def last_operations(apps: Iterable[App]) -> dict[int, Operation]:
    """The newest operation of each app (one query for a page of apps)."""
    ids = [i for i in (getattr(a, "last_operation_id", None) for a in apps) if i]
    found = (
        Operation.objects.select_related("cluster")
        .defer("cluster__kubeconfig", "cluster__bootstrap_secret")  # never decrypted for a list
        .filter(pk__in=ids)
    )
    return {op.subject_id or 0: op for op in found}


def get_app(actor: Actor, app_id: int, *, include_deleted: bool = True) -> App:
    """One app of the org (deleted ones too: their record and revisions stay)."""
    app = list_apps(actor, include_deleted=include_deleted).filter(pk=app_id).first()
    if app is None:
        raise NotFound("No such app.")
    return app


def app_revisions(actor: Actor, app: App) -> QuerySet[AppRevision]:
    """An app's revisions, newest first (secrets never loaded)."""
    require(actor, Action.APP_VIEW)
    return AppRevision.objects.filter(app=app).defer("secrets").order_by("-number")


def app_events(actor: Actor, app: App, *, limit: int = 100) -> list[ClusterEvent]:
    """The newest lines of an app's timeline."""
    require(actor, Action.APP_VIEW)
    return list(ClusterEvent.objects.filter(app=app).order_by("-created_at", "-id")[:limit])
