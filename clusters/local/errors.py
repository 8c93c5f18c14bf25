"""Errors of the local provider's runtime."""

from __future__ import annotations


class LocalClusterError(RuntimeError):
    """A local control plane could not be created, changed or reached."""


class BinariesMissing(LocalClusterError):
    """The Kubernetes/kwok/etcd binaries are not built yet."""


class HostLimitReached(LocalClusterError):
    """This host already runs as many local clusters as it is allowed to."""
