"""The clusters app's actions in the permission matrix, registered from ClustersConfig.ready().

`can` and `require` are re-exported, so clusters code checks its actions with one import.
"""

from __future__ import annotations

from enum import StrEnum

from orgs.choices import Role
from orgs.permissions import can, require

__all__ = ["MATRIX", "Action", "can", "require"]


class Action(StrEnum):
    """What a member can be allowed or refused about provider accounts and clusters."""

    PROVIDER_VIEW = "provider.view"
    PROVIDER_MANAGE = "provider.manage"
    CLUSTER_VIEW = "cluster.view"
    CLUSTER_CREATE = "cluster.create"
    CLUSTER_UPDATE = "cluster.update"
    CLUSTER_DELETE = "cluster.delete"
    KUBECONFIG_DOWNLOAD = "cluster.kubeconfig"
    APP_VIEW = "app.view"
    APP_DEPLOY = "app.deploy"
    APP_DELETE = "app.delete"


MATRIX: dict[Action, Role] = {
    Action.PROVIDER_VIEW: Role.VIEWER,
    # Credentials reach the org's cloud bills: only admins connect or remove them.
    Action.PROVIDER_MANAGE: Role.ADMIN,
    Action.CLUSTER_VIEW: Role.VIEWER,
    # Create, scale, add/remove pools, upgrade, import. Cancelling or retrying an operation
    # needs the action of its kind (clusters.services.clusters.operation_action).
    Action.CLUSTER_CREATE: Role.MEMBER,
    Action.CLUSTER_UPDATE: Role.MEMBER,
    Action.CLUSTER_DELETE: Role.ADMIN,
    # A kubeconfig is cluster-admin on the real cluster.
    Action.KUBECONFIG_DOWNLOAD: Role.MEMBER,
    # Apps, their pods and the cluster's other workloads (never a secret variable's value).
    Action.APP_VIEW: Role.VIEWER,
    # Deploy, update, scale, restart, roll back, adopt a workload, delete a pod.
    Action.APP_DEPLOY: Role.MEMBER,
    Action.APP_DELETE: Role.MEMBER,
}
