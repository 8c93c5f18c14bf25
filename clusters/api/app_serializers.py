"""API shapes of apps, their revisions, pods and the cluster's workloads.

Request bodies are closed (unknown fields refused) and typed loosely where the API takes more than
one spelling (env as a map or a list, a port as a number or an object, a health check as text or
an object): the spec's own validation (clusters.workloads.spec) checks every value the way
Kubernetes does and names the field. Responses are built directly from the stored spec; the
declared fields describe them exactly. A secret variable's value never appears in any response.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from clusters.api.serializers import OperationSerializer, _when
from clusters.choices import AppKind, AppStatus, RevisionKind
from clusters.models import App, AppRevision, Operation
from orgs.api.serializers import ListFilters, QueryIdField, StrictSerializer

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_ENV_ITEM = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
    "required": ["name", "value"],
    "additionalProperties": False,
}
_PORT_ITEM = {
    "type": "object",
    "properties": {
        "port": {"type": "integer"},
        "protocol": {"type": "string", "enum": ["TCP", "UDP", "SCTP"]},
        "name": {"type": "string"},
    },
    "required": ["port"],
    "additionalProperties": False,
}
_HEALTH_OBJECT = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["http", "tcp", "exec"]},
        "path": {"type": "string"},
        "port": {"type": "integer"},
        "command": {"type": "array", "items": {"type": "string"}},
        "initial_delay": {"type": "integer"},
        "period": {"type": "integer"},
        "timeout": {"type": "integer"},
        "failure_threshold": {"type": "integer"},
    },
    "required": ["type"],
    "additionalProperties": False,
}
_RESOURCES_OBJECT = {
    "type": "object",
    "properties": {
        name: {"type": "string", "description": "A Kubernetes quantity (250m, 0.5, 256Mi, 1Gi); empty: unset"}
        for name in ("cpu_request", "cpu_limit", "memory_request", "memory_limit")
    },
    "additionalProperties": False,
}
_VOLUME_ITEM = {
    "type": "object",
    "properties": {
        "claim": {"type": "string", "description": "An existing PersistentVolumeClaim of the namespace"},
        "mount_path": {"type": "string"},
        "read_only": {"type": "boolean"},
        "sub_path": {"type": "string"},
    },
    "required": ["claim", "mount_path"],
    "additionalProperties": False,
}


@extend_schema_field(
    {
        "oneOf": [_STRING_MAP, {"type": "array", "items": _ENV_ITEM}],
        "description": "Plain variables: {NAME: value} or [{name, value}] (order kept)",
    }
)
class EnvField(serializers.JSONField):
    """Plain environment variables in either spelling."""


@extend_schema_field(
    {
        "type": "array",
        "items": {"oneOf": [{"type": "integer"}, _PORT_ITEM]},
        "description": "Container ports (also the Service's): 80, or {port, protocol, name}",
    }
)
class PortsField(serializers.JSONField):
    """Ports as numbers or objects."""


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, _HEALTH_OBJECT],
        "nullable": True,
        "description": "http:/healthz:8080, tcp:5432, exec:cat /tmp/ready, or an object; null: none",
    }
)
class HealthField(serializers.JSONField):
    """A health check as text or an object."""


@extend_schema_field(_RESOURCES_OBJECT)
class ResourcesField(serializers.JSONField):
    """CPU and memory requests and limits."""


@extend_schema_field({"type": "array", "items": _VOLUME_ITEM})
class VolumesField(serializers.JSONField):
    """Mounts of existing PersistentVolumeClaims."""


@extend_schema_field({**_STRING_MAP, "description": "Kubernetes labels of the workload and its pods"})
class LabelsField(serializers.JSONField):
    """A string map."""


@extend_schema_field(
    {
        **_STRING_MAP,
        "description": "Secret variables {NAME: value}: written to the cluster as a Secret, never shown",
    }
)
class SecretsField(serializers.JSONField):
    """Secret values (write-only)."""


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class StringsField(serializers.JSONField):
    """A list of strings."""


def _spec_fields(*, partial: bool) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
    fields: dict[str, serializers.Field] = {  # type: ignore[type-arg]
        "image": serializers.JSONField(required=not partial, help_text="An image reference, e.g. nginx:1.27"),
        "replicas": serializers.JSONField(required=False, help_text="0 to 1000 (default 1)"),
        "command": StringsField(required=False),
        "args": StringsField(required=False),
        "env": EnvField(required=False),
        "secrets": SecretsField(required=False),
        "ports": PortsField(required=False),
        "resources": ResourcesField(required=False),
        "readiness": HealthField(required=False, allow_null=True),
        "liveness": HealthField(required=False, allow_null=True),
        "labels": LabelsField(required=False),
        "annotations": LabelsField(required=False),
        "volumes": VolumesField(required=False),
        "progress_deadline": serializers.JSONField(
            required=False,
            help_text="Seconds without progress before the rollout fails (10 to 3600, default 600)",
        ),
    }
    return fields


class AppCreateSerializer(StrictSerializer):
    """Deploy an app: where, and its spec."""

    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        return {
            "cluster": serializers.IntegerField(min_value=1, help_text="The cluster's id"),
            "name": serializers.JSONField(help_text="A DNS-1123 label (it names the Service too)"),
            "namespace": serializers.JSONField(required=False, help_text="Default: default"),
            **_spec_fields(partial=False),
        }


class AppUpdateSerializer(StrictSerializer):
    """Change an app: any spec field (partial); secrets set by name, or removed by name."""

    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        return {**_spec_fields(partial=True), "remove_secrets": StringsField(required=False)}


class AppScaleSerializer(StrictSerializer):
    """An app's new number of replicas."""

    replicas = serializers.IntegerField(min_value=0, max_value=1000)


class AppRollbackSerializer(StrictSerializer):
    """The revision to go back to (default: the one before the current)."""

    revision = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)


class AppRestartSerializer(StrictSerializer):
    """A rolling restart takes no parameters."""


class AdoptSerializer(StrictSerializer):
    """The workload of the cluster to adopt."""

    kind = serializers.ChoiceField(choices=["Deployment"], default="Deployment")
    namespace = serializers.CharField(max_length=63)
    name = serializers.CharField(max_length=253)


class PodRefSerializer(StrictSerializer):
    """A pod of the cluster, by namespace and name."""

    namespace = serializers.CharField(max_length=63)
    name = serializers.CharField(max_length=253)


NAMESPACE_PARAMETER = OpenApiParameter(
    "namespace", str, location=OpenApiParameter.QUERY, required=False, description="Only this namespace"
)


# --- responses -------------------------------------------------------------------------------


class EnvVarOut(serializers.Serializer):  # type: ignore[type-arg]
    """A plain variable."""

    name = serializers.CharField()
    value = serializers.CharField(allow_blank=True)


class PortOut(serializers.Serializer):  # type: ignore[type-arg]
    """A container port."""

    port = serializers.IntegerField()
    protocol = serializers.ChoiceField(choices=["TCP", "UDP", "SCTP"])
    name = serializers.CharField(allow_blank=True)


class ResourcesOut(serializers.Serializer):  # type: ignore[type-arg]
    """Requests and limits; empty when unset."""

    cpu_request = serializers.CharField(allow_blank=True)
    cpu_limit = serializers.CharField(allow_blank=True)
    memory_request = serializers.CharField(allow_blank=True)
    memory_limit = serializers.CharField(allow_blank=True)


class HealthCheckOut(serializers.Serializer):  # type: ignore[type-arg]
    """A probe."""

    type = serializers.ChoiceField(choices=["http", "tcp", "exec"])
    path = serializers.CharField(allow_blank=True)
    port = serializers.IntegerField()
    command = serializers.ListField(child=serializers.CharField())
    initial_delay = serializers.IntegerField()
    period = serializers.IntegerField()
    timeout = serializers.IntegerField()
    failure_threshold = serializers.IntegerField()


class VolumeOut(serializers.Serializer):  # type: ignore[type-arg]
    """A claim mount."""

    # "read_only" would shadow Field.read_only as a class attribute: declared here instead.
    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        return {
            "claim": serializers.CharField(),
            "mount_path": serializers.CharField(),
            "read_only": serializers.BooleanField(),
            "sub_path": serializers.CharField(allow_blank=True),
        }


class AppSpecOut(serializers.Serializer):  # type: ignore[type-arg]
    """An app's spec as stored (secret variables by name only)."""

    image = serializers.CharField()
    replicas = serializers.IntegerField()
    command = serializers.ListField(child=serializers.CharField(allow_blank=True))
    args = serializers.ListField(child=serializers.CharField(allow_blank=True))
    env = EnvVarOut(many=True)
    secret_keys = serializers.ListField(child=serializers.CharField())
    ports = PortOut(many=True)
    resources = ResourcesOut()
    readiness = HealthCheckOut(allow_null=True)
    liveness = HealthCheckOut(allow_null=True)
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))
    annotations = serializers.DictField(child=serializers.CharField(allow_blank=True))
    volumes = VolumeOut(many=True)
    progress_deadline = serializers.IntegerField()
    restarted_at = serializers.CharField(allow_blank=True)


class ReplicasOut(serializers.Serializer):  # type: ignore[type-arg]
    """Replica counts as last observed."""

    desired = serializers.IntegerField()
    updated = serializers.IntegerField()
    ready = serializers.IntegerField()
    available = serializers.IntegerField()


class ClusterRef(serializers.Serializer):  # type: ignore[type-arg]
    """The cluster an app runs on."""

    id = serializers.IntegerField()
    name = serializers.CharField()


class AppSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """An app: where it runs, its current spec and revision, its status and replica counts."""

    cluster = ClusterRef()
    kind = serializers.ChoiceField(choices=AppKind.choices)
    status = serializers.ChoiceField(choices=AppStatus.choices)
    spec = AppSpecOut()
    replicas = ReplicasOut()
    operation = OperationSerializer(allow_null=True, help_text="The app's newest operation")

    class Meta:
        model = App
        fields = [
            "id",
            "name",
            "namespace",
            "kind",
            "cluster",
            "status",
            "status_reason",
            "revision",
            "adopted",
            "spec",
            "replicas",
            "observed_at",
            "operation",
            "created_by",
            "created_at",
            "updated_at",
            "deleted_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: App) -> dict[str, Any]:
        operations: dict[int, Operation] = self.context.get("operations", {})
        operation = operations.get(instance.pk)
        return {
            "id": instance.pk,
            "name": instance.name,
            "namespace": instance.namespace,
            "kind": instance.kind,
            "cluster": {"id": instance.cluster_id, "name": instance.cluster.name},
            "status": instance.status,
            "status_reason": instance.status_reason,
            "revision": instance.revision,
            "adopted": instance.adopted,
            "spec": instance.spec,
            "replicas": {
                "desired": instance.desired_replicas,
                "updated": instance.updated_replicas,
                "ready": instance.ready_replicas,
                "available": instance.available_replicas,
            },
            "observed_at": _when(instance.observed_at),
            "operation": OperationSerializer().to_representation(operation) if operation else None,
            "created_by": instance.created_by,
            "created_at": _when(instance.created_at),
            "updated_at": _when(instance.updated_at),
            "deleted_at": _when(instance.deleted_at),
        }


class AppAccepted(serializers.Serializer):  # type: ignore[type-arg]
    """The response to an app change: the app and the operation rolling it out."""

    app = AppSerializer()
    operation = OperationSerializer()


class RevisionSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """One recorded change of an app (its secrets never shown)."""

    kind = serializers.ChoiceField(choices=RevisionKind.choices)
    changes = serializers.ListField(child=serializers.CharField())
    spec = AppSpecOut()
    current = serializers.BooleanField()

    class Meta:
        model = AppRevision
        fields = [
            "number",
            "kind",
            "changes",
            "spec",
            "rolled_back_to",
            "created_by",
            "created_at",
            "current",
        ]
        read_only_fields = fields

    def to_representation(self, instance: AppRevision) -> dict[str, Any]:
        return {
            "number": instance.number,
            "kind": instance.kind,
            "changes": list(instance.changes or []),
            "spec": instance.spec,
            "rolled_back_to": instance.rolled_back_to,
            "created_by": instance.created_by,
            "created_at": _when(instance.created_at),
            "current": instance.number == self.context.get("current"),
        }


class ContainerOut(serializers.Serializer):  # type: ignore[type-arg]
    """A container of a pod."""

    name = serializers.CharField()
    image = serializers.CharField(allow_blank=True)
    ready = serializers.BooleanField()
    restarts = serializers.IntegerField()
    state = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True)
    last_state = serializers.CharField(allow_blank=True)
    last_reason = serializers.CharField(allow_blank=True)
    last_exit_code = serializers.IntegerField(allow_null=True)


class PodSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A pod as the cluster reports it."""

    name = serializers.CharField()
    namespace = serializers.CharField()
    phase = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True, help_text="The one-line why (like kubectl's STATUS)")
    ready = serializers.IntegerField(help_text="Ready containers")
    total = serializers.IntegerField(help_text="Containers")
    restarts = serializers.IntegerField()
    node = serializers.CharField(allow_blank=True)
    ip = serializers.CharField(allow_blank=True)
    created_at = serializers.CharField(allow_blank=True)
    deleting = serializers.BooleanField()
    owner_kind = serializers.CharField(allow_blank=True)
    owner_name = serializers.CharField(allow_blank=True)
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))
    containers = ContainerOut(many=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data: dict[str, Any] = instance.to_dict()
        return data


class AppRefOut(serializers.Serializer):  # type: ignore[type-arg]
    """The app a workload is."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=AppStatus.choices)


class WorkloadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A workload of a cluster (Flotilla's or not) with its pods."""

    kind = serializers.ChoiceField(choices=["Deployment", "StatefulSet", "DaemonSet"])
    name = serializers.CharField()
    namespace = serializers.CharField()
    desired = serializers.IntegerField()
    ready = serializers.IntegerField()
    available = serializers.IntegerField()
    updated = serializers.IntegerField()
    images = serializers.ListField(child=serializers.CharField())
    selector = serializers.DictField(child=serializers.CharField(allow_blank=True))
    created_at = serializers.CharField(allow_blank=True)
    app_id = serializers.IntegerField(allow_null=True)
    managed = serializers.BooleanField(help_text="Made by Flotilla")
    adoptable = serializers.BooleanField(help_text="Not an app yet, and of a kind that can be adopted")
    app = AppRefOut(allow_null=True)
    pods = PodSerializer(many=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data: dict[str, Any] = instance.info.to_dict()
        app = instance.app
        data["app"] = {"id": app.pk, "name": app.name, "status": app.status} if app is not None else None
        data["adoptable"] = app is None and instance.info.kind == "Deployment"
        data["pods"] = [p.to_dict() for p in instance.pods]
        return data


class AppFilters(ListFilters):
    """?cluster= (id), ?namespace=, ?name= (exact), ?status=."""

    cluster = QueryIdField(required=False, help_text="Only apps of this cluster")
    namespace = serializers.CharField(
        required=False, allow_blank=True, help_text="Only apps of this namespace"
    )
    name = serializers.CharField(required=False, allow_blank=True, help_text="Exact app name")
    status = serializers.ChoiceField(
        choices=AppStatus.choices, required=False, allow_blank=True, help_text="Only apps in this status"
    )
