"""Enums of the clusters app and the transition tables of its two lifecycles."""

from __future__ import annotations

from django.db import models


class ProviderKind(models.TextChoices):
    """Where a cluster's machines come from."""

    LOCAL = "local", "Local (simulated nodes on the Flotilla host)"
    EXISTING = "existing", "Existing cluster (imported kubeconfig)"
    EC2 = "ec2", "AWS EC2"
    DIGITALOCEAN = "digitalocean", "DigitalOcean"
    GCE = "gce", "Google Compute Engine"
    LINODE = "linode", "Linode"
    VULTR = "vultr", "Vultr"
    AZURE = "azure", "Azure"
    OPENSTACK = "openstack", "OpenStack"


class ClusterStatus(models.TextChoices):
    """Where a cluster is in its life."""

    PENDING = "pending", "Pending"
    PROVISIONING = "provisioning", "Provisioning"
    READY = "ready", "Ready"
    UPDATING = "updating", "Updating"
    DEGRADED = "degraded", "Degraded"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    ERROR = "error", "Error"


_S = ClusterStatus
CLUSTER_TRANSITIONS: dict[str, frozenset[str]] = {
    _S.PENDING: frozenset({_S.PROVISIONING, _S.DELETING, _S.ERROR}),
    _S.PROVISIONING: frozenset({_S.READY, _S.DEGRADED, _S.ERROR, _S.DELETING}),
    _S.READY: frozenset({_S.UPDATING, _S.DEGRADED, _S.DELETING}),
    _S.UPDATING: frozenset({_S.READY, _S.DEGRADED, _S.ERROR, _S.DELETING}),
    _S.DEGRADED: frozenset({_S.READY, _S.UPDATING, _S.ERROR, _S.DELETING}),
    # An operation that failed is retried (provisioning/updating again) or the cluster deleted;
    # a health check that finds it working again brings it back.
    _S.ERROR: frozenset({_S.PROVISIONING, _S.UPDATING, _S.READY, _S.DEGRADED, _S.DELETING}),
    _S.DELETING: frozenset({_S.DELETED, _S.ERROR}),
    _S.DELETED: frozenset(),
}
# Statuses in which the cluster's API is expected to answer (health refresh runs on these).
LIVE_STATUSES = frozenset({_S.READY, _S.DEGRADED, _S.UPDATING})


class OperationKind(models.TextChoices):
    """What an operation was asked to do."""

    CREATE = "create", "Create"
    IMPORT = "import", "Import"
    SCALE = "scale", "Scale a pool"
    ADD_POOL = "add_pool", "Add a pool"
    REMOVE_POOL = "remove_pool", "Remove a pool"
    UPGRADE = "upgrade", "Upgrade"
    DELETE = "delete", "Delete"


class OperationStatus(models.TextChoices):
    """Where an operation is: queued (or waiting to retry), running, or finished."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


_O = OperationStatus
# The operations engine's state machine (clusters.engine.machine.move is the only writer):
# - queued → running: a worker claimed it; running → queued: it waits (a step asked to be called
#   later, a failed attempt backs off, the task's budget is spent) and is dispatched again when due;
# - running → running: another worker takes over from one that stopped heart-beating;
# - failed/cancelled → queued: retried by a person (a fresh budget of attempts).
OPERATION_TRANSITIONS: dict[str, frozenset[str]] = {
    _O.QUEUED: frozenset({_O.RUNNING, _O.CANCELLED, _O.FAILED}),
    _O.RUNNING: frozenset({_O.RUNNING, _O.QUEUED, _O.SUCCEEDED, _O.FAILED, _O.CANCELLED}),
    _O.FAILED: frozenset({_O.QUEUED}),
    _O.CANCELLED: frozenset({_O.QUEUED}),
    _O.SUCCEEDED: frozenset(),
}
ACTIVE_OPERATION_STATUSES = frozenset({_O.QUEUED, _O.RUNNING})


class ResourceState(models.TextChoices):
    """A cloud resource is recorded (planned) before it is created, so nothing is ever orphaned."""

    PLANNED = "planned", "Planned"
    CREATED = "created", "Created"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"


class EventLevel(models.TextChoices):
    """Severity of a timeline event."""

    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
