"""API shapes of the clusters app. Secrets (credentials, kubeconfigs) never appear in a body."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from clusters.choices import ClusterStatus, ProviderKind
from clusters.models import Cluster, ClusterEvent, Node, NodePool, Operation, ProviderAccount
from clusters.services.specs import MAX_POOL_NODES
from orgs.api.serializers import ListFilters, QueryBooleanField, QueryIdField, StrictSerializer

# The rules of clusters.services.specs, as patterns the schema can carry (\Z: no trailing newline).
CLUSTER_NAME = RegexValidator(
    r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?\Z",
    "Use 1-40 lowercase letters, digits and hyphens, starting with a letter.",
)
POOL_NAME = RegexValidator(
    r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?\Z",
    "Use 1-30 lowercase letters, digits and hyphens, starting with a letter.",
)


def _cluster_name() -> serializers.CharField:
    return serializers.CharField(max_length=40, trim_whitespace=False, validators=[CLUSTER_NAME])


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
            "kind": serializers.ChoiceField(choices=ProviderKind.choices),
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
            "subject_type",
            "subject_id",
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
            "subject_type": instance.subject_type,
            "subject_id": instance.subject_id,
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

    name = serializers.CharField(max_length=30, trim_whitespace=False, validators=[POOL_NAME])
    size = serializers.CharField(max_length=60)
    count = serializers.IntegerField(min_value=1, max_value=MAX_POOL_NODES)
    labels = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, default=dict
    )
    taints = serializers.ListField(child=serializers.DictField(), required=False, default=list)


class ClusterCreateSerializer(StrictSerializer):
    """Create a cluster (provider by name or id; local when omitted)."""

    name = _cluster_name()
    provider = serializers.CharField(required=False, allow_blank=True, default="")
    region = serializers.CharField(required=False, allow_blank=True, default="")
    version = serializers.CharField(required=False, allow_blank=True, default="")
    pools = PoolInputSerializer(many=True)


class ClusterImportSerializer(StrictSerializer):
    """Import a running cluster by kubeconfig."""

    # "context" would shadow Serializer.context as a class attribute: declared here instead.
    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        return {
            "name": _cluster_name(),
            "kubeconfig": serializers.CharField(max_length=256 * 1024, trim_whitespace=False),
            "context": serializers.CharField(required=False, allow_blank=True, default=""),
        }


class ScaleSerializer(StrictSerializer):
    """A pool's new node count."""

    count = serializers.IntegerField(min_value=0, max_value=MAX_POOL_NODES)


class UpgradeSerializer(StrictSerializer):
    """The version to move to."""

    version = serializers.CharField(max_length=20)


class ClusterEventSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A line of the cluster's timeline."""

    class Meta:
        model = ClusterEvent
        fields = ["id", "created_at", "level", "message", "operation"]
        read_only_fields = fields


class RegionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A region of a provider (clusters.providers.base.Region)."""

    id = serializers.CharField()
    name = serializers.CharField()


class SizeSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A machine size of a region (clusters.providers.base.Size)."""

    id = serializers.CharField()
    name = serializers.CharField()
    cpus = serializers.FloatField()
    memory_mb = serializers.IntegerField()
    price_hourly = serializers.FloatField(allow_null=True)


class CatalogueSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """What a provider offers: regions, sizes of one region, Kubernetes versions."""

    regions = RegionSerializer(many=True)
    sizes = SizeSerializer(many=True)
    versions = serializers.ListField(child=serializers.CharField())


class CredentialFieldSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """One field a provider kind needs (clusters.providers.base.CredentialField)."""

    # "label", "required" and "help" would shadow Field's attributes: declared here instead.
    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        return {
            "name": serializers.CharField(),
            "label": serializers.CharField(),
            "secret": serializers.BooleanField(),
            "required": serializers.BooleanField(),
            "help": serializers.CharField(allow_blank=True),
            "multiline": serializers.BooleanField(),
        }


class ProviderKindSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A kind of provider and the fields an account of it needs."""

    # "label" and "fields" would shadow Field's and Serializer's attributes: declared here instead.
    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        return {
            "kind": serializers.ChoiceField(choices=ProviderKind.choices),
            "label": serializers.CharField(),
            "provisions": serializers.BooleanField(),
            "capabilities": serializers.ListField(child=serializers.CharField()),
            "fields": CredentialFieldSerializer(many=True),
        }


class ClusterFilters(ListFilters):
    """?name= (exact) and ?status=."""

    name = serializers.CharField(required=False, allow_blank=True, help_text="Exact cluster name")
    status = serializers.ChoiceField(
        choices=ClusterStatus.choices,
        required=False,
        allow_blank=True,
        help_text="Only clusters in this status",
    )


class OperationFilters(ListFilters):
    """?cluster= (id) and ?active=true."""

    cluster = QueryIdField(required=False, help_text="Only operations of this cluster")
    active = QueryBooleanField(required=False, help_text="true: only queued or running operations")
