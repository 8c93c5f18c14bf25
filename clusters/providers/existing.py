"""Existing clusters, imported by kubeconfig: observed and used, never provisioned or destroyed."""

from __future__ import annotations

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
        if not ctx.cluster.kubeconfig_text():
            raise ProviderError("The imported cluster has no kubeconfig.", retryable=False)
        return Outcome.finished("Imported cluster reachable")

    def destroy(self, ctx: ReconcileContext) -> Outcome:
        return Outcome.finished("Forgotten (the cluster itself was not touched)")
