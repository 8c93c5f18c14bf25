"""API shapes of storage locations, snapshots, restores and restore reports.

Request bodies are closed (unknown fields refused); the services check every value and name the
field. Credentials are write-only: no response ever carries them.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clusters.api.serializers import OperationSerializer
from orgs.api.serializers import ListFilters, QueryIdField, StrictSerializer
from snapshots.choices import (
    ExistingPolicy,
    ItemAction,
    ItemResult,
    RestoreMode,
    RestoreStatus,
    SnapshotStatus,
    StorageKind,
)
from snapshots.models import Restore, RestoreItem, Snapshot, StorageLocation

_STRINGS = {"type": "array", "items": {"type": "string"}, "nullable": True}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# null is taken as "not given" for these keys (the services check every value).
_NULLABLE_MAP = {**_STRING_MAP, "nullable": True}
SELECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "include_namespaces": {**_STRINGS, "description": "Namespace names or globs (fnmatch); empty: all"},
        "exclude_namespaces": {
            **_STRINGS,
            "description": "Namespace names or globs left out (wins over include)",
        },
        "include_kinds": {**_STRINGS, "description": "Kind, group/Kind or group/version/Kind; empty: all"},
        "exclude_kinds": _STRINGS,
        "label_selector": {"type": "string", "nullable": True, "description": "A Kubernetes label selector"},
        "cluster_scoped": {
            "type": "boolean",
            "description": "Take cluster-scoped objects too (default true)",
        },
    },
    "additionalProperties": False,
}
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **SELECTION_SCHEMA["properties"],
        "namespace_map": {**_NULLABLE_MAP, "description": "{source namespace: target namespace}"},
        "storage_class_map": {**_NULLABLE_MAP, "description": "{source storage class: target storage class}"},
        "existing": {
            "type": "string",
            "enum": [*ExistingPolicy.values, None],
            "nullable": True,
            "description": "Objects that already exist (null: skip)",
        },
    },
    "additionalProperties": False,
}
CONDITION = {
    "type": "object",
    "properties": {k: {"type": "string"} for k in ("type", "status", "reason", "message")},
    "required": ["type", "status", "reason", "message"],
}
DIFF_ITEM = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "before": {}, "after": {}},
    "required": ["path"],
}


@extend_schema_field(SELECTION_SCHEMA)
class SelectionField(serializers.JSONField):
    """What a snapshot takes (checked by the service)."""


@extend_schema_field(OPTIONS_SCHEMA)
class OptionsField(serializers.JSONField):
    """How a restore writes (checked by the service)."""


@extend_schema_field({"type": "array", "items": CONDITION})
class ConditionsField(serializers.JSONField):
    """Conditions: Consistent, Complete…"""


@extend_schema_field({"type": "object", "additionalProperties": {"type": "integer"}})
class CountsField(serializers.JSONField):
    """Counts by key."""


@extend_schema_field({"type": "array", "items": DIFF_ITEM})
class DiffField(serializers.JSONField):
    """Field changes of an update."""


@extend_schema_field(_STRING_MAP)
class OptionMapField(serializers.JSONField):
    """Non-secret driver options."""


@extend_schema_field(
    {
        "type": "object",
        "properties": {"key": {"type": "string"}, "secret": {"type": "string"}},
        "additionalProperties": False,
    }
)
class CredentialsField(serializers.JSONField):
    """Write-only credentials."""


class LocationSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A storage location (never its credentials)."""

    kind = serializers.ChoiceField(choices=StorageKind.choices)
    options = OptionMapField()
    has_credentials = serializers.BooleanField()
    snapshot_count = serializers.IntegerField()

    class Meta:
        model = StorageLocation
        fields = [
            "id",
            "name",
            "kind",
            "driver",
            "bucket",
            "endpoint",
            "region",
            "prefix",
            "options",
            "is_default",
            "has_credentials",
            "checked_at",
            "check_error",
            "snapshot_count",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields


class LocationWriteSerializer(StrictSerializer):
    """Add or change a storage location (checked against the storage before it is saved)."""

    name = serializers.CharField(required=False, max_length=63)
    kind = serializers.ChoiceField(choices=StorageKind.choices, required=False)
    driver = serializers.CharField(required=False, allow_blank=True, max_length=40)
    bucket = serializers.CharField(required=False, allow_blank=True, max_length=255)
    endpoint = serializers.CharField(required=False, allow_blank=True, max_length=500)
    region = serializers.CharField(required=False, allow_blank=True, max_length=63)
    prefix = serializers.CharField(required=False, allow_blank=True, max_length=200)
    options = OptionMapField(required=False)
    is_default = serializers.BooleanField(required=False)
    credentials = CredentialsField(required=False, write_only=True)


class SnapshotSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A snapshot: where it came from, where it is, what it holds, and its newest operation."""

    status = serializers.ChoiceField(choices=SnapshotStatus.choices)
    location = serializers.IntegerField(source="location_id", allow_null=True)
    location_name = serializers.SerializerMethodField()
    cluster = serializers.IntegerField(source="cluster_id", allow_null=True)
    selection = SelectionField()
    conditions = ConditionsField()
    kinds = CountsField()
    operation = OperationSerializer(allow_null=True, help_text="The snapshot's newest operation")

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "uuid",
            "name",
            "cluster",
            "cluster_name",
            "location",
            "location_name",
            "status",
            "reason",
            "selection",
            "conditions",
            "object_count",
            "raw_bytes",
            "stored_bytes",
            "chunk_count",
            "kinds",
            "kubernetes_version",
            "provider",
            "region",
            "format_version",
            "created_by",
            "created_at",
            "completed_at",
            "operation",
        ]
        read_only_fields = fields

    def get_location_name(self, snapshot: Snapshot) -> str:
        return snapshot.location.name if snapshot.location is not None else ""


class SnapshotCreateSerializer(StrictSerializer):
    """Take a snapshot of a cluster."""

    cluster = serializers.IntegerField(min_value=1)
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    location = serializers.IntegerField(
        required=False, min_value=1, help_text="Default: the org's default location"
    )
    selection = SelectionField(required=False)


class SnapshotFilters(ListFilters):
    """?cluster= (id), ?status=, ?name= (exact), ?location= (id)."""

    cluster = QueryIdField(required=False, help_text="Only snapshots of this cluster")
    status = serializers.ChoiceField(choices=SnapshotStatus.choices, required=False, allow_blank=True)
    name = serializers.CharField(required=False, allow_blank=True, help_text="Exact snapshot name")
    location = QueryIdField(required=False, help_text="Only snapshots in this storage location")


class RestoreSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A restore or a preview: what, where, how, and how it went."""

    snapshot = serializers.IntegerField(source="snapshot_id")
    snapshot_name = serializers.CharField(source="snapshot.name")
    target = serializers.IntegerField(source="target_id")
    target_name = serializers.CharField(source="target.name")
    mode = serializers.ChoiceField(choices=RestoreMode.choices)
    status = serializers.ChoiceField(choices=RestoreStatus.choices)
    options = OptionsField()
    counts = CountsField()
    preview = serializers.IntegerField(
        source="preview_id", allow_null=True, help_text="The preview it was confirmed from"
    )
    operation = OperationSerializer(allow_null=True, help_text="The restore's newest operation")

    class Meta:
        model = Restore
        fields = [
            "id",
            "uuid",
            "snapshot",
            "snapshot_name",
            "target",
            "target_name",
            "mode",
            "status",
            "reason",
            "options",
            "counts",
            "preview",
            "created_by",
            "created_at",
            "completed_at",
            "operation",
        ]
        read_only_fields = fields


class RestoreCreateSerializer(StrictSerializer):
    """Restore a snapshot into a cluster, or preview it."""

    snapshot = serializers.IntegerField(min_value=1)
    target = serializers.IntegerField(min_value=1)
    mode = serializers.ChoiceField(choices=RestoreMode.choices, required=False)
    options = OptionsField(required=False)


class RestoreFilters(ListFilters):
    """?snapshot= (id), ?target= (cluster id), ?status=, ?mode=."""

    snapshot = QueryIdField(required=False)
    target = QueryIdField(required=False)
    status = serializers.ChoiceField(choices=RestoreStatus.choices, required=False, allow_blank=True)
    mode = serializers.ChoiceField(choices=RestoreMode.choices, required=False, allow_blank=True)


class RestoreItemSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """One object of a restore's report."""

    action = serializers.ChoiceField(choices=ItemAction.choices)
    result = serializers.ChoiceField(choices=ItemResult.choices)
    diff = DiffField()

    class Meta:
        model = RestoreItem
        fields = [
            "seq",
            "api_version",
            "kind",
            "namespace",
            "source_namespace",
            "name",
            "action",
            "result",
            "message",
            "diff",
        ]
        read_only_fields = fields


class RestoreItemFilters(ListFilters):
    """?result=, ?action=, ?kind=, ?namespace=."""

    result = serializers.ChoiceField(choices=ItemResult.choices, required=False, allow_blank=True)
    action = serializers.ChoiceField(choices=ItemAction.choices, required=False, allow_blank=True)
    kind = serializers.CharField(required=False, allow_blank=True)
    namespace = serializers.CharField(required=False, allow_blank=True)
