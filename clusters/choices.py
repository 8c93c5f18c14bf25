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


class AppKind(models.TextChoices):
    """The Kubernetes controller an app is rendered as."""

    DEPLOYMENT = "deployment", "Stateless (Deployment)"
    # Stateful apps (a StatefulSet with volume claim templates) come with volumes.
    STATEFULSET = "statefulset", "Stateful (StatefulSet)"


class AppStatus(models.TextChoices):
    """Where an app is: its rollout, then what the cluster last said about it."""

    PENDING = "pending", "Pending"
    DEPLOYING = "deploying", "Deploying"
    AVAILABLE = "available", "Available"
    DEGRADED = "degraded", "Degraded"
    FAILED = "failed", "Failed"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"


_A = AppStatus
APP_TRANSITIONS: dict[str, frozenset[str]] = {
    _A.PENDING: frozenset({_A.DEPLOYING, _A.FAILED, _A.DELETING}),
    # A rollout ends Available or Failed; a cancelled one leaves what the cluster says (Degraded
    # until the next observation), and a deletion may supersede it.
    _A.DEPLOYING: frozenset({_A.AVAILABLE, _A.DEGRADED, _A.FAILED, _A.DELETING}),
    # Observation moves a settled app between Available and Degraded; every change deploys again.
    _A.AVAILABLE: frozenset({_A.DEPLOYING, _A.DEGRADED, _A.DELETING}),
    _A.DEGRADED: frozenset({_A.DEPLOYING, _A.AVAILABLE, _A.DELETING}),
    _A.FAILED: frozenset({_A.DEPLOYING, _A.DELETING}),
    # A deletion the cluster refuses is retried; given up, it leaves the app Failed with the reason
    # (and a new deletion can be asked for).
    _A.DELETING: frozenset({_A.DELETED, _A.FAILED}),
    _A.DELETED: frozenset(),
}
# Statuses in which an app's objects are expected in its cluster (observation runs on these).
LIVE_APP_STATUSES = frozenset({_A.AVAILABLE, _A.DEGRADED, _A.DEPLOYING, _A.FAILED})


class RevisionKind(models.TextChoices):
    """What made a revision of an app."""

    DEPLOY = "deploy", "Deploy"
    UPDATE = "update", "Update"
    SCALE = "scale", "Scale"
    RESTART = "restart", "Restart"
    ROLLBACK = "rollback", "Roll back"
    ADOPT = "adopt", "Adopt"


class AppOperationKind(models.TextChoices):
    """The engine's kinds for apps (registered by clusters.services.app_jobs)."""

    ROLLOUT = "app_rollout", "Roll out an app"
    DELETE = "app_delete", "Delete an app"
