"""Discovery: what a cluster's API serves — its version, groups, and every resource's kind.

Read from `/version`, `/api`, `/apis` and each group version's resource list, in a few parallel
calls, and cached on the client for `DISCOVERY_TTL` seconds (a CRD created meanwhile is found by
`Client.resource`'s one refresh on a miss). Subresources (`pods/log`, `deployments/scale`) are
left out. Group versions served by an aggregated API server (an APIService with a service, like
metrics.k8s.io) are flagged: such a server may be down or slow, and a snapshot skips them by
policy; one that does not answer is listed in `unavailable` instead of failing discovery.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from clusters.kube.client import NO_RETRY, Client, path_segment
from clusters.kube.errors import KubeError, NotFound, not_kubernetes

DISCOVERY_TTL = 30.0
PARALLEL = 4


@dataclass(frozen=True)
class Resource:
    """One kind served at one group version."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    aggregated: bool = False

    @property
    def api_version(self) -> str:
        """ "v1" or "apps/v1", as in an object's apiVersion."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
        """The URL path of the collection, or of one object (and its subresource)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{path_segment(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{path_segment(name)}"
            if subresource:
                base += f"/{subresource}"
        return base

    def can(self, verb: str) -> bool:
        return verb in self.verbs


@dataclass(frozen=True)
class Discovery:
    """A cluster's API as discovered at one moment."""

    git_version: str
    preferred: dict[str, str]  # group ("" for the core group) -> its preferred version
    resources: tuple[Resource, ...]
    aggregated: frozenset[str] = frozenset()  # group versions served by another API server
    unavailable: dict[str, str] = field(default_factory=dict)  # group version -> why not read

    def find(self, api_version: str, kind: str) -> Resource | None:
        """The resource of a kind at an apiVersion, or None."""
        group, _, version = api_version.rpartition("/")
        return next(
            (r for r in self.resources if r.group == group and r.version == version and r.kind == kind), None
        )

    def preferred_resources(self, *, include_aggregated: bool = False) -> Iterator[Resource]:
        """Each kind once, at its group's preferred version (what a snapshot lists)."""
        for resource in self.resources:
            if self.preferred.get(resource.group) != resource.version:
                continue
            if resource.aggregated and not include_aggregated:
                continue
            yield resource


# Kinds the product reads everywhere: no discovery round trip just to find their path.
WELL_KNOWN = {
    (r.api_version, r.kind): r
    for r in (
        Resource("", "v1", "Node", "nodes", False, ("get", "list", "watch", "create", "delete", "patch")),
        Resource("", "v1", "Namespace", "namespaces", False, ("get", "list", "watch", "create", "delete")),
        Resource("", "v1", "Pod", "pods", True, ("get", "list", "watch", "create", "delete", "patch")),
        Resource("", "v1", "Event", "events", True, ("get", "list", "watch")),
        Resource("batch", "v1", "Job", "jobs", True, ("get", "list", "watch", "create", "delete", "patch")),
    )
}


def _get(client: Client, path: str) -> dict[str, Any]:
    body = client.request("GET", path)
    if not isinstance(body, dict):
        raise not_kubernetes(client.server)
    return body


def _aggregated(client: Client) -> frozenset[str]:
    """Group versions whose APIService points at a service (not served by kube-apiserver)."""
    try:
        listing = _get(client, "/apis/apiregistration.k8s.io/v1/apiservices")
    except KubeError:
        return frozenset()  # not allowed to read APIServices: nothing is flagged
    found = set()
    for item in listing.get("items") or []:
        spec = item.get("spec") or {}
        if spec.get("service"):
            found.add(f"{spec.get('group', '')}/{spec.get('version', '')}")
    return frozenset(found)


def _resources(client: Client, group: str, version: str, aggregated: bool) -> list[Resource]:
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    body = _get(client, path)
    found = []
    for entry in body.get("resources") or []:
        name = str(entry.get("name", ""))
        if not name or "/" in name:
            continue  # subresources: pods/log, deployments/scale
        found.append(
            Resource(
                group=group,
                version=version,
                kind=str(entry.get("kind", "")),
                plural=name,
                namespaced=bool(entry.get("namespaced")),
                verbs=tuple(entry.get("verbs") or ()),
                short_names=tuple(entry.get("shortNames") or ()),
                aggregated=aggregated,
            )
        )
    return found


def discover(client: Client) -> Discovery:
    """Read the cluster's API surface now (no cache)."""
    version = _get(client, "/version")
    if not isinstance(version.get("gitVersion"), str):
        raise not_kubernetes(client.server)
    core = _get(client, "/api")
    groups = _get(client, "/apis")
    preferred = {"": "v1"}
    group_versions: list[tuple[str, str]] = [("", v) for v in core.get("versions") or []]
    for group in groups.get("groups") or []:
        name = str(group.get("name", ""))
        preferred[name] = str((group.get("preferredVersion") or {}).get("version", ""))
        group_versions += [(name, str(v.get("version"))) for v in group.get("versions") or []]
    aggregated = _aggregated(client)
    unavailable: dict[str, str] = {}
    resources: list[Resource] = []

    def read(pair: tuple[str, str]) -> list[Resource]:
        group, version = pair
        flagged = f"{group}/{version}" in aggregated
        # An aggregated API that is down answers 503 for as long as it is down: asked once.
        asker = client.with_retry(NO_RETRY) if flagged else client
        try:
            return _resources(asker, group, version, flagged)
        except NotFound as exc:  # removed between /apis and now
            unavailable[f"{group}/{version}".lstrip("/")] = exc.message
        except KubeError as exc:
            if not flagged:
                raise
            unavailable[f"{group}/{version}"] = exc.message
        return []

    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="kube-discovery") as pool:
        for found in pool.map(read, group_versions):
            resources += found
    return Discovery(
        git_version=str(version["gitVersion"]),
        preferred=preferred,
        resources=tuple(resources),
        aggregated=aggregated,
        unavailable=unavailable,
    )


def discovery(client: Client, *, refresh: bool = False) -> Discovery:
    """The client's discovery, read again when older than `DISCOVERY_TTL` or when asked."""
    with client.lock:
        cached = client.discovery_cache
    if cached is not None and not refresh and cached[0] > time.monotonic():
        known: Discovery = cached[1]
        return known
    found = discover(client)
    with client.lock:
        client.discovery_cache = (time.monotonic() + DISCOVERY_TTL, found)
    return found


def resource(client: Client, api_version: str, kind: str) -> Resource:
    """The resource of a kind: well-known ones directly, others by discovery (refreshed once)."""
    known = WELL_KNOWN.get((api_version, kind))
    if known is not None:
        return known
    for refresh in (False, True):
        found = discovery(client, refresh=refresh).find(api_version, kind)
        if found is not None:
            return found
    raise NotFound(f"{client.server} serves no kind {kind} in {api_version}", fields={"kind": [kind]})
