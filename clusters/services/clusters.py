"""Cluster writes: each changes the desired spec and records an operation for the engine to run.

Every function takes the acting member, checks the permission matrix, runs in one transaction
(the org row is locked while quotas are checked), audits, and enqueues after commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum

from clusters import kube
from clusters.choices import (
    ACTIVE_OPERATION_STATUSES,
    ClusterStatus,
    OperationKind,
    OperationStatus,
    ProviderKind,
)
from clusters.engine import runner
from clusters.engine.jobs import job_for
from clusters.exceptions import OperationInProgress
from clusters.models import Cluster, ClusterEvent, NodePool, Operation, ProviderAccount
from clusters.permissions import Action, can, require
from clusters.providers.registry import driver_for
from clusters.services import specs
from clusters.services.events import cluster_changed
from orgs.actors import Actor
from orgs.exceptions import Conflict, InvalidTransition, QuotaExceeded, ValidationFailed
from orgs.models import Organization
from orgs.services.audit import record_action

# An import that cannot reach its cluster says so after a few tries (2 s, 4 s apart), not minutes.
IMPORT_ATTEMPTS = 3


@dataclass(frozen=True)
class Requested:
    """A cluster and the operation that was queued for it (`created` False on an idempotent replay)."""

    cluster: Cluster
    operation: Operation
    created: bool = True


def _lock_org(actor: Actor) -> Organization:
    assert actor.org is not None
    org: Organization = Organization.objects.select_for_update().get(pk=actor.org.pk)
    return org


def _check_quotas(org: Organization, *, extra_clusters: int, extra_nodes: int) -> None:
    live = Cluster.objects.filter(deleted_at__isnull=True)
    if extra_clusters and live.count() + extra_clusters > org.max_clusters:
        raise QuotaExceeded(
            f"Your organisation may have at most {org.max_clusters} clusters; "
            "delete one or ask for a higher quota.",
            fields={"name": [f"Cluster quota ({org.max_clusters}) reached."]},
        )
    if extra_nodes > 0:
        used = (
            NodePool.objects.filter(cluster__deleted_at__isnull=True, removing=False)
            .exclude(cluster__provider__kind=ProviderKind.EXISTING)
            .aggregate(n=Sum("count"))["n"]
            or 0
        )
        if used + extra_nodes > org.max_nodes:
            raise QuotaExceeded(
                f"This would bring your organisation to {used + extra_nodes} nodes; "
                f"the quota is {org.max_nodes}.",
                fields={"count": [f"Node quota ({org.max_nodes}) exceeded."]},
            )


def _check_local_share(provider: ProviderAccount) -> None:
    """One org's share of this host's local control planes (the org row is locked by the caller).

    Local clusters, and cloud clusters in simulation mode (a local control plane stands in for
    k3s), all run on the Flotilla host, whose FLOTILLA_LOCAL_MAX_CLUSTERS slots are shared by
    every org.
    """
    if not _runs_on_this_host(provider):
        return
    limit = settings.FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG
    used = (
        Cluster.objects.filter(deleted_at__isnull=True)
        .filter(Q(provider__kind=ProviderKind.LOCAL) | Q(provider__settings__bootstrap="local"))
        .count()
    )
    if used + 1 > limit:
        raise QuotaExceeded(
            f"Your organisation may run at most {limit} local clusters on this host "
            f"(FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG) and has {used}; delete one first.",
            fields={"provider": [f"Local cluster limit ({limit}) reached."]},
        )


def _runs_on_this_host(provider: ProviderAccount) -> bool:
    return provider.kind == ProviderKind.LOCAL or (provider.settings or {}).get("bootstrap") == "local"


def _start_operation(
    actor: Actor,
    cluster: Cluster,
    kind: str,
    params: dict[str, Any],
    *,
    idempotency_key: str = "",
    max_attempts: int | None = None,
) -> Operation:
    """Record the operation and hand it to the engine (queued after commit). Call inside the
    write's transaction. Operations being cancelled (a deletion superseding them) do not block:
    the engine starts the new one once they have stopped."""
    busy = (
        Operation.objects.select_for_update()
        .filter(
            cluster=cluster,
            subject_type="cluster",
            status__in=ACTIVE_OPERATION_STATUSES,
            cancel_requested=False,
        )
        .order_by("id")
        .first()
    )
    if busy is not None:
        raise OperationInProgress(
            f"{busy.get_kind_display()} (operation #{busy.pk}) is still {busy.status} on {cluster.name}; "
            "wait for it or cancel it."
        )
    operation = Operation.objects.create(
        cluster=cluster,
        subject_type="cluster",
        subject_id=cluster.pk,
        kind=kind,
        params=params,
        requested_by=actor.label[:254],
        idempotency_key=idempotency_key,
        step="Queued",
        **({"max_attempts": max_attempts} if max_attempts else {}),
    )
    ClusterEvent.objects.create(
        cluster=cluster,
        operation=operation,
        message=f"{operation.get_kind_display()} requested by {actor.label}",
    )
    schema = actor.org.schema_name if actor.org is not None else ""
    runner.submit(operation)
    cluster_changed(schema, cluster)
    return operation


def _replay(idempotency_key: str) -> Requested | None:
    if not idempotency_key:
        return None
    operation = Operation.objects.select_related("cluster").filter(idempotency_key=idempotency_key).first()
    return Requested(operation.cluster, operation, created=False) if operation is not None else None


def _external_name(name: str) -> str:
    # Unique on the host and at the provider, whatever the org: the name plus a random suffix.
    return f"{name[:30]}-{secrets.token_hex(4)}"


def create_cluster(
    actor: Actor,
    *,
    name: str,
    provider: ProviderAccount,
    region: str = "",
    version: str | None = None,
    pools: Any,
    idempotency_key: str = "",
) -> Requested:
    """Ask for a new cluster; it is provisioned by the reconcile loop."""
    require(actor, Action.CLUSTER_CREATE)
    replay = _replay(idempotency_key)
    if replay is not None:
        return replay
    name = specs.check_cluster_name(name)
    if provider.kind == ProviderKind.EXISTING:
        raise ValidationFailed.for_field(
            "provider", "Existing clusters are imported with a kubeconfig, not created."
        )
    driver = driver_for(provider)
    region = specs.check_region(driver, region)
    version = specs.check_version(driver, version)
    checked = specs.check_pools(pools, size_ids=specs.size_ids(driver, region))
    try:
        with transaction.atomic():
            org = _lock_org(actor)
            if Cluster.objects.filter(name=name, deleted_at__isnull=True).exists():
                raise Conflict(f"A cluster named {name!r} already exists.", fields={"name": ["Taken."]})
            _check_quotas(org, extra_clusters=1, extra_nodes=sum(p.count for p in checked))
            _check_local_share(provider)
            cluster = Cluster.objects.create(
                name=name,
                provider=provider,
                region=region,
                version=version,
                external_name=_external_name(name),
            )
            NodePool.objects.bulk_create(
                NodePool(
                    cluster=cluster, name=p.name, size=p.size, count=p.count, labels=p.labels, taints=p.taints
                )
                for p in checked
            )
            record_action(
                actor,
                "cluster.created",
                obj=cluster,
                after={
                    "provider": provider.name,
                    "region": region,
                    "version": version,
                    "pools": [{"name": p.name, "size": p.size, "count": p.count} for p in checked],
                },
            )
            operation = _start_operation(
                actor, cluster, OperationKind.CREATE, {"version": version}, idempotency_key=idempotency_key
            )
    except IntegrityError as exc:
        # Two identical requests racing: the second finds the first's rows.
        replay = _replay(idempotency_key)
        if replay is not None:
            return replay
        raise Conflict(f"A cluster named {name!r} already exists.", fields={"name": ["Taken."]}) from exc
    return Requested(cluster, operation)


def import_cluster(
    actor: Actor,
    *,
    name: str,
    kubeconfig: str,
    context: str | None = None,
    provider: ProviderAccount | None = None,
    idempotency_key: str = "",
) -> Requested:
    """Import a running cluster by kubeconfig: checked here (shape, outbound policy), reached by the worker.

    Nothing calls the cluster in the request: the import operation's first step does, in a
    worker, with a deadline; an unreachable or refused cluster ends Failed with the reason (retry
    it or delete it), never half-saved.
    """
    require(actor, Action.CLUSTER_CREATE)
    replay = _replay(idempotency_key)
    if replay is not None:
        return replay
    name = specs.check_cluster_name(name)
    text, _context = kube.parse_kubeconfig(kubeconfig, context)
    target = kube.check_server(text)
    try:
        with transaction.atomic():
            org = _lock_org(actor)
            if Cluster.objects.filter(name=name, deleted_at__isnull=True).exists():
                raise Conflict(f"A cluster named {name!r} already exists.", fields={"name": ["Taken."]})
            _check_quotas(org, extra_clusters=1, extra_nodes=0)
            if provider is None:
                provider = ProviderAccount.objects.filter(kind=ProviderKind.EXISTING).order_by("pk").first()
            if provider is None:
                provider = ProviderAccount.objects.create(name="imported", kind=ProviderKind.EXISTING)
            elif provider.kind != ProviderKind.EXISTING:
                raise ValidationFailed.for_field(
                    "provider", "Imports use an existing-cluster provider account."
                )
            cluster = Cluster.objects.create(
                name=name,
                provider=provider,
                region="",
                version="",
                external_name=_external_name(name),
                kubeconfig=text,
                api_endpoint=kube.server_of(text),
            )
            record_action(
                actor,
                "cluster.imported",
                obj=cluster,
                after={"server": cluster.api_endpoint, "address": target.address},
            )
            operation = _start_operation(
                actor,
                cluster,
                OperationKind.IMPORT,
                {},
                idempotency_key=idempotency_key,
                max_attempts=IMPORT_ATTEMPTS,
            )
    except IntegrityError as exc:
        replay = _replay(idempotency_key)
        if replay is not None:
            return replay
        raise Conflict(f"A cluster named {name!r} already exists.", fields={"name": ["Taken."]}) from exc
    return Requested(cluster, operation)


def _locked_cluster(cluster: Cluster) -> Cluster:
    return Cluster.objects.select_for_update().select_related("provider").get(pk=cluster.pk)


def _require_managed(cluster: Cluster, what: str) -> None:
    if cluster.provider.kind == ProviderKind.EXISTING:
        raise ValidationFailed(
            f"{cluster.name} is an imported cluster: {what} it where it runs; "
            "Flotilla only observes its nodes."
        )
    if cluster.status in (ClusterStatus.DELETING, ClusterStatus.DELETED):
        raise InvalidTransition(f"{cluster.name} is being deleted.")


def scale_node_pool(actor: Actor, cluster: Cluster, pool: NodePool, *, count: Any) -> Operation:
    """Set a pool's node count."""
    require(actor, Action.CLUSTER_UPDATE)
    wanted = specs.check_count(count, "count", minimum=0)
    with transaction.atomic():
        org = _lock_org(actor)
        cluster = _locked_cluster(cluster)
        _require_managed(cluster, "scale")
        pool = NodePool.objects.select_for_update().get(pk=pool.pk, cluster=cluster)
        if pool.removing:
            raise InvalidTransition(f"Pool {pool.name} is being removed.")
        _check_quotas(org, extra_clusters=0, extra_nodes=wanted - pool.count)
        before = pool.count
        pool.count = wanted
        pool.save(update_fields=["count"])
        record_action(
            actor, "cluster.pool_scaled", obj=cluster, before={pool.name: before}, after={pool.name: wanted}
        )
        return _start_operation(
            actor, cluster, OperationKind.SCALE, {"pool": pool.name, "from": before, "to": wanted}
        )


def add_node_pool(actor: Actor, cluster: Cluster, *, pool: Any) -> Operation:
    """Add a pool to a cluster."""
    require(actor, Action.CLUSTER_UPDATE)
    _require_managed(cluster, "add pools to")
    driver = driver_for(cluster.provider)
    checked = specs.check_pool(pool, 0, size_ids=specs.size_ids(driver, cluster.region))
    with transaction.atomic():
        org = _lock_org(actor)
        cluster = _locked_cluster(cluster)
        _require_managed(cluster, "add pools to")
        if NodePool.objects.filter(cluster=cluster, name=checked.name).exists():
            raise Conflict(
                f"{cluster.name} already has a pool named {checked.name!r}.", fields={"name": ["Taken."]}
            )
        if NodePool.objects.filter(cluster=cluster).count() >= specs.MAX_POOLS:
            raise ValidationFailed.for_field("name", f"A cluster has at most {specs.MAX_POOLS} pools.")
        _check_quotas(org, extra_clusters=0, extra_nodes=checked.count)
        NodePool.objects.create(
            cluster=cluster,
            name=checked.name,
            size=checked.size,
            count=checked.count,
            labels=checked.labels,
            taints=checked.taints,
        )
        record_action(
            actor,
            "cluster.pool_added",
            obj=cluster,
            after={"pool": checked.name, "size": checked.size, "count": checked.count},
        )
        return _start_operation(actor, cluster, OperationKind.ADD_POOL, {"pool": checked.name})


def remove_node_pool(actor: Actor, cluster: Cluster, pool: NodePool) -> Operation:
    """Remove a pool and its nodes (a cluster keeps at least one pool)."""
    require(actor, Action.CLUSTER_UPDATE)
    with transaction.atomic():
        cluster = _locked_cluster(cluster)
        _require_managed(cluster, "remove pools from")
        pool = NodePool.objects.select_for_update().get(pk=pool.pk, cluster=cluster)
        if not NodePool.objects.filter(cluster=cluster, removing=False).exclude(pk=pool.pk).exists():
            raise ValidationFailed(f"{pool.name} is the last pool of {cluster.name}; a cluster needs one.")
        pool.removing = True
        pool.save(update_fields=["removing"])
        record_action(
            actor, "cluster.pool_removed", obj=cluster, before={"pool": pool.name, "count": pool.count}
        )
        return _start_operation(actor, cluster, OperationKind.REMOVE_POOL, {"pool": pool.name})


def upgrade_cluster(actor: Actor, cluster: Cluster, *, version: str) -> Operation:
    """Move the cluster to another Kubernetes version the provider offers."""
    require(actor, Action.CLUSTER_UPDATE)
    _require_managed(cluster, "upgrade")
    target = specs.check_version(driver_for(cluster.provider), version)
    with transaction.atomic():
        cluster = _locked_cluster(cluster)
        _require_managed(cluster, "upgrade")
        if target == cluster.version:
            raise ValidationFailed.for_field("version", f"{cluster.name} already runs {target}.")
        specs.check_upgrade(cluster.version, target)
        before = cluster.version
        cluster.version = target
        cluster.save(update_fields=["version", "updated_at"])
        record_action(
            actor, "cluster.upgraded", obj=cluster, before={"version": before}, after={"version": target}
        )
        return _start_operation(actor, cluster, OperationKind.UPGRADE, {"from": before, "to": target})


def delete_cluster(actor: Actor, cluster: Cluster) -> Operation:
    """Delete a cluster and everything made for it (imported clusters are only forgotten).

    An operation still queued or running is cancelled first: deletion wins.
    """
    require(actor, Action.CLUSTER_DELETE)
    with transaction.atomic():
        cluster = _locked_cluster(cluster)
        if cluster.status == ClusterStatus.DELETED:
            raise InvalidTransition(f"{cluster.name} is already deleted.")
        existing = cluster.operations.filter(
            kind=OperationKind.DELETE, status__in=ACTIVE_OPERATION_STATUSES
        ).first()
        if existing is not None:
            return existing
        for active in Operation.objects.select_for_update().filter(
            cluster=cluster, status__in=ACTIVE_OPERATION_STATUSES
        ):
            _cancel(active, reason=f"superseded by deletion requested by {actor.label}")
        record_action(actor, "cluster.deleted", obj=cluster, before={"status": cluster.status})
        return _start_operation(actor, cluster, OperationKind.DELETE, {"forget": cluster.is_imported})


def _cancel(operation: Operation, *, reason: str) -> None:
    """Cancel a queued (or waiting) operation now; ask a running one to stop at its next step."""
    runner.request_cancel(operation, reason=reason)


def operation_action(operation: Operation) -> str:
    """The permission that cancelling or retrying this operation needs (its job says: that of its
    kind, an action of whichever app registered the kind)."""
    return job_for(operation.kind).permission(operation)


def can_act_on_operation(actor: Actor, operation: Operation) -> bool:
    """Whether the actor may cancel or retry the operation (for pages that offer the buttons)."""
    return can(actor, operation_action(operation))


def cancel_operation(actor: Actor, operation: Operation) -> Operation:
    """Stop an operation: a queued one at once, a running one after its current step."""
    require(actor, Action.CLUSTER_UPDATE)
    with transaction.atomic():
        operation = Operation.objects.select_for_update().select_related("cluster").get(pk=operation.pk)
        require(actor, operation_action(operation))
        if not operation.is_active:
            raise InvalidTransition(f"Operation #{operation.pk} has already {operation.status}.")
        _cancel(operation, reason=f"cancelled by {actor.label}")
        record_action(actor, "operation.cancelled", obj=operation, after={"cluster": operation.cluster.name})
        cluster_changed(actor.org.schema_name if actor.org else "", operation.cluster)
    return operation


def _subject_label(operation: Operation) -> str:
    if operation.subject_type == "cluster":
        return operation.cluster.name
    return f"{operation.subject_type} #{operation.subject_id} of {operation.cluster.name}"


def retry_operation(actor: Actor, operation: Operation) -> Operation:
    """Run a failed (or cancelled) operation again, with a fresh budget of attempts."""
    require(actor, Action.CLUSTER_UPDATE)
    with transaction.atomic():
        operation = Operation.objects.select_for_update().select_related("cluster").get(pk=operation.pk)
        require(actor, operation_action(operation))
        if operation.status not in (OperationStatus.FAILED, OperationStatus.CANCELLED):
            raise InvalidTransition(
                f"Only failed or cancelled operations are retried; #{operation.pk} is {operation.status}."
            )
        # Only the operation's own subject counts: an app's rollout does not block its cluster's
        # retry, nor the other way round.
        same_subject = Operation.objects.filter(
            subject_type=operation.subject_type, subject_id=operation.subject_id
        )
        newer = same_subject.filter(pk__gt=operation.pk).exclude(status=OperationStatus.CANCELLED)
        if newer.exists():
            raise Conflict(f"A newer operation ran on {_subject_label(operation)}; start a new one instead.")
        if same_subject.filter(status__in=ACTIVE_OPERATION_STATUSES).exists():
            raise OperationInProgress(f"Another operation is active on {_subject_label(operation)}.")
        if not runner.retry(operation, reason=f"retry requested by {actor.label}"):
            raise Conflict(f"Operation #{operation.pk} changed meanwhile; reload and try again.")
        ClusterEvent.objects.create(
            cluster=operation.cluster, operation=operation, message=f"Retry requested by {actor.label}"
        )
        record_action(actor, "operation.retried", obj=operation, after={"cluster": operation.cluster.name})
        schema = actor.org.schema_name if actor.org else ""
        cluster_changed(schema, operation.cluster)
    return operation


def download_kubeconfig(actor: Actor, cluster: Cluster) -> str:
    """The cluster's admin kubeconfig, for a member; every download is audited."""
    require(actor, Action.KUBECONFIG_DOWNLOAD)
    text = cluster.kubeconfig_text()
    if not text:
        raise Conflict(f"{cluster.name} has no kubeconfig yet; wait until it is provisioned.")
    record_action(actor, "cluster.kubeconfig_downloaded", obj=cluster)
    return text
