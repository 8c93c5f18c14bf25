"""The clusters app's models: provider accounts, clusters and their operations (clusters.py),
apps and their revisions (apps.py). Data and invariants only."""

from clusters.models.apps import App, AppRevision
from clusters.models.clusters import (
    CloudResource,
    Cluster,
    ClusterEvent,
    Node,
    NodePool,
    Operation,
    OperationTransition,
    ProviderAccount,
)

__all__ = [
    "App",
    "AppRevision",
    "CloudResource",
    "Cluster",
    "ClusterEvent",
    "Node",
    "NodePool",
    "Operation",
    "OperationTransition",
    "ProviderAccount",
]
