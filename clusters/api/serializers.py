"""API shapes of the clusters app. Secrets (credentials, kubeconfigs) never appear in a body."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from clusters.models import Cluster, ClusterEvent, Node, NodePool, Operation, ProviderAccount
from orgs.api.serializers import StrictSerializer

# The list and detail reads are the API's hottest path: the read-only serializers below build
# their dicts directly (a few microseconds an object) instead of through DRF's per-field
# machinery (tens of them). tests/clusters/test_api_serializers.py holds each fast path equal to
# DRF's generic one, so the two can never drift; the declared fields still drive the schema.
_datetime = serializers.DateTimeField()


def _when(value: Any) -> str | None:
    return None if value is None else str(_datetime.to_representation(value))


class ProviderAccountSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A provider account: its settings, never its credentials."""

    cluster_count = serializers.IntegerField(read_only=True, default=0)
    has_credentials = serializers.SerializerMethodField()

    class Meta:
        model = ProviderAccount
        fields = [
            "id",
            "name",
            "kind",
            "settings",
            "has_credentials",
            "validated_at",
            "created_at",
            "cluster_count",
        ]
        read_only_fields = fields

    def get_has_credentials(self, obj: ProviderAccount) -> bool:
        return bool(obj.credentials)


def _field_values(*, required: bool) -> serializers.DictField:
    if required:
        return serializers.DictField(child=serializers.CharField(allow_blank=True))
    return serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)


class ProviderAccountCreateSerializer(StrictSerializer):
    """Connect a provider: `fields` holds the kind's credential and setting fields."""

    # "fields" would shadow Serializer.fields as a class attribute: declared here instead.
    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        return {
            "name": serializers.CharField(max_length=60),
            "kind": serializers.CharField(max_length=20),
            "fields": _field_values(required=False),
        }


class ProviderCredentialsSerializer(StrictSerializer):
    """Replace an account's credentials (rotation)."""

    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        return {"fields": _field_values(required=True)}


class NodePoolSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A node pool's desired spec."""

    class Meta:
        model = NodePool
        fields = ["id", "name", "size", "count", "labels", "taints", "removing", "created_at"]
        read_only_fields = fields

    def to_representation(self, instance: NodePool) -> dict[str, Any]:
        return {
            "id": instance.pk,
            "name": instance.name,
            "size": instance.size,
            "count": instance.count,
            "labels": instance.labels,
            "taints": instance.taints,
            "removing": instance.removing,
            "created_at": _when(instance.created_at),
        }


class NodeSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A node as last observed."""

    class Meta:
        model = Node
        fields = [
            "name",
            "pool_name",
            "ready",
            "kubelet_version",
            "cpu",
            "memory",
            "internal_ip",
            "observed_at",
        ]
        read_only_fields = fields


class OperationSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A task status resource: poll it until `status` is succeeded, failed or cancelled."""

    cluster_name = serializers.CharField(source="cluster.name", read_only=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "cluster",
            "cluster_name",
            "kind",
            "status",
            "params",
            "step",
            "progress",
            "error",
            "attempts",
            "max_attempts",
            "cancel_requested",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Operation) -> dict[str, Any]:
        return {
            "id": instance.pk,
            "cluster": instance.cluster_id,
            "cluster_name": instance.cluster.name,
            "kind": instance.kind,
            "status": instance.status,
            "params": instance.params,
            "step": instance.step,
            "progress": instance.progress,
            "error": instance.error,
            "attempts": instance.attempts,
            "max_attempts": instance.max_attempts,
            "cancel_requested": instance.cancel_requested,
            "requested_by": instance.requested_by,
            "created_at": _when(instance.created_at),
            "started_at": _when(instance.started_at),
            "finished_at": _when(instance.finished_at),
        }


class ClusterSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A cluster: spec, status, conditions, pools and its active operation."""

    provider: serializers.SlugRelatedField = serializers.SlugRelatedField(  # type: ignore[type-arg]
        slug_field="name", read_only=True
    )
    provider_kind = serializers.CharField(source="provider.kind", read_only=True)
    pools = NodePoolSerializer(many=True, read_only=True)
    nodes_ready = serializers.SerializerMethodField()
    nodes_total = serializers.SerializerMethodField()
    active_operation = serializers.SerializerMethodField()

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "provider",
            "provider_kind",
            "region",
            "version",
            "observed_version",
            "status",
            "status_reason",
            "conditions",
            "api_endpoint",
            "pools",
            "nodes_ready",
            "nodes_total",
            "active_operation",
            "health_checked_at",
            "created_at",
            "updated_at",
            "deleted_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Cluster) -> dict[str, Any]:
        pool = NodePoolSerializer()
        return {
            "id": instance.pk,
            "name": instance.name,
            "provider": instance.provider.name,
            "provider_kind": instance.provider.kind,
            "region": instance.region,
            "version": instance.version,
            "observed_version": instance.observed_version,
            "status": instance.status,
            "status_reason": instance.status_reason,
            "conditions": instance.conditions,
            "api_endpoint": instance.api_endpoint,
            "pools": [pool.to_representation(p) for p in instance.pools.all()],
            "nodes_ready": self.get_nodes_ready(instance),
            "nodes_total": self.get_nodes_total(instance),
            "active_operation": self.get_active_operation(instance),
            "health_checked_at": _when(instance.health_checked_at),
            "created_at": _when(instance.created_at),
            "updated_at": _when(instance.updated_at),
            "deleted_at": _when(instance.deleted_at),
        }

    def get_nodes_ready(self, obj: Cluster) -> int:
        return int(getattr(obj, "ready_nodes", 0) or 0)

    def get_nodes_total(self, obj: Cluster) -> int:
        return int(getattr(obj, "node_total", 0) or 0)

    def get_active_operation(self, obj: Cluster) -> dict[str, Any] | None:
        active = getattr(obj, "active_operations", None)
        if not active:
            return None
        return OperationSerializer().to_representation(active[0])


class ClusterAccepted(serializers.Serializer):  # type: ignore[type-arg]
    """The response to a write: the cluster and the operation that will carry it out."""

    cluster = ClusterSerializer()
    operation = OperationSerializer()


class PoolInputSerializer(StrictSerializer):
    """One node pool of a request."""

    name = serializers.CharField(max_length=30)
    size = serializers.CharField(max_length=60)
    count = serializers.IntegerField()
    labels = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, default=dict
    )
    taints = serializers.ListField(child=serializers.DictField(), required=False, default=list)


class ClusterCreateSerializer(StrictSerializer):
    """Create a cluster (provider by name or id; local when omitted)."""

    name = serializers.CharField(max_length=40)
    provider = serializers.CharField(required=False, allow_blank=True, default="")
    region = serializers.CharField(required=False, allow_blank=True, default="")
    version = serializers.CharField(required=False, allow_blank=True, default="")
    pools = PoolInputSerializer(many=True)


class ClusterImportSerializer(StrictSerializer):
    """Import a running cluster by kubeconfig."""

    # "context" would shadow Serializer.context as a class attribute: declared here instead.
    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        return {
            "name": serializers.CharField(max_length=40),
            "kubeconfig": serializers.CharField(max_length=256 * 1024, trim_whitespace=False),
            "context": serializers.CharField(required=False, allow_blank=True, default=""),
        }


class ScaleSerializer(StrictSerializer):
    """A pool's new node count."""

    count = serializers.IntegerField()


class UpgradeSerializer(StrictSerializer):
    """The version to move to."""

    version = serializers.CharField(max_length=20)


class ClusterEventSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A line of the cluster's timeline."""

    class Meta:
        model = ClusterEvent
        fields = ["id", "created_at", "level", "message", "operation"]
        read_only_fields = fields


class CatalogueSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """What a provider offers: regions, sizes of one region, Kubernetes versions."""

    regions = serializers.ListField(child=serializers.DictField())
    sizes = serializers.ListField(child=serializers.DictField())
    versions = serializers.ListField(child=serializers.CharField())
