"""Helpers of the apps tests: an org's cluster record on the session's real local cluster, and
reading what the API server holds for an app."""

from __future__ import annotations

from typing import Any

from django_tenants.utils import schema_context
from kubernetes.client.exceptions import ApiException

from clusters.choices import ClusterStatus
from clusters.models import Cluster
from clusters.services.providers import ensure_local_provider
from orgs.models import Organization
from tests.clusters.helpers import owner_actor
from tests.local_kube import LocalCluster


def cluster_on(org: Organization, local: LocalCluster, name: str = "apps") -> Cluster:
    """A Ready cluster of the org whose API is the running local cluster (its control plane was
    started by the test session, so no provisioning is waited for). It names the runtime's cluster,
    so a health check looks at the real components; never delete it (that would stop the
    session's shared control plane)."""
    with schema_context(org.schema_name):
        provider = ensure_local_provider(owner_actor(org))
        return Cluster.objects.create(
            name=name,
            provider=provider,
            version="1.36.1",
            external_name=local.name,
            status=ClusterStatus.READY,
            kubeconfig=local.kubeconfig,
            api_endpoint="local",
        )


def read(local: LocalCluster, kind: str, namespace: str, name: str) -> Any:
    """An object as the API server holds it (None when it is not there)."""
    apps, core = local.apps(), local.core()
    readers = {
        "Deployment": lambda: apps.read_namespaced_deployment(name, namespace),
        "Secret": lambda: core.read_namespaced_secret(name, namespace),
        "Service": lambda: core.read_namespaced_service(name, namespace),
        "Namespace": lambda: core.read_namespace(name),
    }
    try:
        return readers[kind]()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
