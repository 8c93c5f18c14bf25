"""Existing clusters, imported by kubeconfig: observed and used, never provisioned or destroyed.

The kubeconfig is the tenant's: every call to the cluster goes through the outbound policy
(`config.outbound`, applied by `clusters.kube`), and the first call is made here, by the import
operation in a worker, never in the web request.
"""

from __future__ import annotations

from clusters import kube
from clusters.exceptions import ProviderError
from clusters.providers.base import Outcome, ProviderDriver, ReconcileContext, Region, Size


class ExistingClusterDriver(ProviderDriver):
    """A cluster someone else runs (EKS, GKE, AKS, k3s, kind...). "Delete" forgets it."""

    kind = "existing"
    label = "Existing cluster"
    credential_fields = ()
    provisions = False

    def validate(self) -> None:
        """Nothing to check: each imported cluster brings its own kubeconfig."""

    def regions(self) -> list[Region]:
        return [Region(id="", name="(wherever the cluster runs)")]

    def sizes(self, region: str) -> list[Size]:
        return []

    def versions(self) -> list[str]:
        return []

    def reconcile(self, ctx: ReconcileContext) -> Outcome:
        """Reach the cluster once: its version becomes the spec's (it is observed, not managed)."""
        kubeconfig = ctx.cluster.kubeconfig_text()
        if not kubeconfig:
            raise ProviderError("The imported cluster has no kubeconfig.", retryable=False)
        observation = kube.observe(kubeconfig)
        if ctx.cluster.version != observation.version:
            ctx.cluster.version = observation.version
            ctx.cluster.save(update_fields=["version", "updated_at"])
        return Outcome.finished(f"Reached Kubernetes {observation.version} at {kube.server_of(kubeconfig)}")

    def destroy(self, ctx: ReconcileContext) -> Outcome:
        return Outcome.finished("Forgotten (the cluster itself was not touched)")
