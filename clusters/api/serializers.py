"""API shapes of the clusters app. Secrets (credentials, kubeconfigs) never appear in a body."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from clusters.models import Cluster, ClusterEvent, Node, NodePool, Operation, ProviderAccount
from orgs.api.serializers import StrictSerializer


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

    def get_nodes_ready(self, obj: Cluster) -> int:
        return int(getattr(obj, "ready_nodes", 0) or 0)

    def get_nodes_total(self, obj: Cluster) -> int:
        return int(getattr(obj, "node_total", 0) or 0)

    def get_active_operation(self, obj: Cluster) -> dict[str, Any] | None:
        active = getattr(obj, "active_operations", None)
        if not active:
            return None
        return dict(OperationSerializer(active[0]).data)


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
