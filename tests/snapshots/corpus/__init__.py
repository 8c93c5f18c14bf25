"""The fidelity corpus: objects of every kind a snapshot must carry faithfully, and its loader.

The YAML files next to this module are templates (`string.Template`: `$prefix`, `$ns_a`, `$ns_b`,
`$ns_c`, `$cluster_ip`, `$node_port`). `corpus_objects(prefix)` renders them into three
namespaces (`<prefix>-a`, `-b`, `-c`) plus a ~900 KB ConfigMap built here, so a test can load
several copies into one cluster side by side.

Every object a copy owns carries the label `CORPUS_LABEL=<prefix>`; objects its controllers make
(Pods, ReplicaSets, the StatefulSet's claims) do not. The CRDs (group `corpus.flotilla.dev`) and
the StorageClass `corpus-fast` are shared by all copies in a cluster: they are labelled
`CORPUS_LABEL=shared`, applied if missing, and removed with the last copy.

Rendered ownerReferences carry an empty uid: the owner's uid exists only once it is created, so
`load_corpus` creates owners first and fills it in. Bootstrap tokens are not in the corpus: they
belong in kube-system, and the corpus stays out of kube-* namespaces.

What the cluster adds, that a snapshot sees and a restore must not fight: the aggregated
ClusterRole's rules (the aggregation controller writes them), the service-account-token Secret's
data (the token controller's), the Widget `red`'s status (written through its subresource after
creation), the LoadBalancer Service's node ports (allocated), defaults (the Widget `amber`'s
size, written at v1alpha1 and read at v1), and the Service labels the endpoints controllers copy
onto Endpoints and EndpointSlices.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import re
import time
from collections import Counter
from pathlib import Path
from string import Template
from typing import Any

import yaml

from clusters import kube

CORPUS_LABEL = "corpus.flotilla.dev/set"
SHARED = "shared"  # the label value of objects every copy in a cluster shares
GROUP = "corpus.flotilla.dev"
FINALIZER = "corpus.flotilla.dev/keep"
STORAGE_CLASS = "corpus-fast"
BIG_CONFIG_MAP = "big-payload"
BIG_BYTES = 900_000  # under a ConfigMap's 1 MiB and etcd's 1.5 MiB request limit
DEFAULT_SERVICE_CIDR = "10.0.0.0/24"  # kube-apiserver's own default range
NODE_PORTS = (30000, 32767)  # kube-apiserver's default node-port range

_HERE = Path(__file__).resolve().parent
_FILES = (
    "crds.yaml",
    "storage.yaml",
    "policy.yaml",
    "rbac.yaml",
    "config.yaml",
    "owners.yaml",
    "services.yaml",
    "workloads.yaml",
    "network.yaml",
    "customs.yaml",
)
_PREFIX = re.compile(r"^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$")
_SUFFIXES = ("a", "b", "c")

# The order of a load that cannot race: CRDs (then Established), namespaces, cluster-scoped
# prerequisites, identities and configuration, claims, services, controllers, the rest, and
# custom resources last. Within a rank, owners come before what they own (see `_load_order`).
_RANKS = {
    "CustomResourceDefinition": 0,
    "Namespace": 1,
    "StorageClass": 2,
    "PriorityClass": 2,
    "IngressClass": 2,
    "ClusterRole": 2,
    "ClusterRoleBinding": 3,
    "ServiceAccount": 4,
    "Role": 4,
    "RoleBinding": 5,
    "LimitRange": 5,
    "Secret": 6,
    "ConfigMap": 6,
    "PersistentVolumeClaim": 7,
    "Service": 8,
    "Deployment": 9,
    "StatefulSet": 9,
    "DaemonSet": 9,
    "Job": 9,
    "CronJob": 9,
    "ResourceQuota": 11,
}
_CUSTOM_RANK = 12
_OTHER_RANK = 10
_WAIT = 60.0  # seconds: a CRD to be Established, a copy's namespaces to be gone


def corpus_namespaces(prefix: str) -> list[str]:
    """The namespaces a copy of the corpus lives in."""
    _check_prefix(prefix)
    return [f"{prefix}-{suffix}" for suffix in _SUFFIXES]


def corpus_objects(
    prefix: str, *, service_cidr: str = DEFAULT_SERVICE_CIDR, taken: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Every object of one copy of the corpus, rendered for `prefix` (ownerReferences' uids empty).

    The fixed clusterIP and nodePort are picked from the prefix inside `service_cidr` and the
    default node-port range, skipping the addresses and ports (as strings) in `taken`.
    """
    cluster_ip, node_port = _fixed_addresses(prefix, service_cidr, taken)
    names = corpus_namespaces(prefix)
    values = {
        "prefix": prefix,
        "cluster_ip": cluster_ip,
        "node_port": str(node_port),
        **{f"ns_{suffix}": name for suffix, name in zip(_SUFFIXES, names, strict=True)},
    }
    objects: list[dict[str, Any]] = [_namespace(name) for name in names]
    for file in _FILES:
        text = Template((_HERE / file).read_text(encoding="utf-8")).substitute(values)
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    objects.append(_big_config_map(names[2]))
    for obj in objects:
        labels = obj["metadata"].setdefault("labels", {})
        labels[CORPUS_LABEL] = SHARED if is_shared(obj) else prefix
    return objects


def is_shared(obj: dict[str, Any]) -> bool:
    """Whether an object is one every copy in a cluster shares (the CRDs, the StorageClass)."""
    kind, name = str(obj["kind"]), str(obj["metadata"]["name"])
    return kind == "CustomResourceDefinition" or (kind == "StorageClass" and name == STORAGE_CLASS)


def load_corpus(kubeconfig: str, prefix: str) -> dict[str, Any]:
    """Create one copy of the corpus in a cluster Flotilla runs; {"objects": n, "kinds": {...}}
    with kinds counted at their preferred version (the shared objects counted too).

    Meant for a cluster that does not hold this prefix yet: its objects are created (an existing
    one is `AlreadyExists`); the shared ones are applied, so a second copy finds them in place.
    """
    client = kube.connect(kubeconfig, trusted=True)
    objects = corpus_objects(prefix, service_cidr=_service_cidr(client), taken=_taken_addresses(client))
    uids: dict[tuple[str, str, str], str] = {}
    kinds: Counter[tuple[str, str]] = Counter()
    crds_ready = False
    for obj in _load_order(objects):
        if obj["kind"] != "CustomResourceDefinition" and not crds_ready:
            _wait_established(client, [o for o in objects if o["kind"] == "CustomResourceDefinition"])
            crds_ready = True
        made = _put(client, obj, uids)
        meta = made["metadata"]
        uids[(obj["kind"], meta.get("namespace", ""), meta["name"])] = meta["uid"]
        kinds[(obj["apiVersion"].rpartition("/")[0], obj["kind"])] += 1
    # Counted at each group's preferred version, as a snapshot lists them ("apps/v1/Deployment").
    preferred = kube.discovery(client).preferred
    counts = {f"{group}/{preferred[group]}/{kind}".lstrip("/"): n for (group, kind), n in kinds.items()}
    return {"objects": sum(counts.values()), "kinds": dict(sorted(counts.items()))}


def unload_corpus(kubeconfig: str, prefix: str) -> None:
    """Remove one copy (finalizers stripped first), and the shared objects with the last copy."""
    client = kube.connect(kubeconfig, trusted=True)
    objects = corpus_objects(prefix)
    for obj in objects:
        if obj["metadata"].get("finalizers"):
            _strip_finalizers(client, obj)
    names = corpus_namespaces(prefix)
    for name in names:
        kube.delete(client, "v1", "Namespace", name, missing_ok=True)
    cluster_scoped = [
        obj
        for obj in reversed(_load_order(objects))
        if obj["kind"] != "Namespace" and not obj["metadata"].get("namespace") and not is_shared(obj)
    ]
    for obj in cluster_scoped:
        _delete(client, obj)
    _wait_gone(client, [("v1", "Namespace", name) for name in names])
    _wait_gone(client, [_key(obj) for obj in cluster_scoped], again=True)
    # Any other labelled namespace holds a copy (a restored one may carry this prefix's label
    # under another name): the shared objects stay for it.
    others = [
        ns
        for ns in kube.list_items(client, ("v1", "Namespace"), label_selector=CORPUS_LABEL)
        if ns["metadata"]["name"] not in names
    ]
    if not others:
        shared = [obj for obj in objects if is_shared(obj)]
        for obj in shared:
            _delete(client, obj)
        # A CRD is removed after its custom resources: a load that came before it was gone
        # would find it Terminating.
        _wait_gone(client, [_key(obj) for obj in shared])


def _check_prefix(prefix: str) -> None:
    if not _PREFIX.match(prefix):
        raise ValueError(f"corpus prefix {prefix!r}: a DNS label of at most 32 characters")


def _namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"corpus.flotilla.dev/part": name.rsplit("-", 1)[1]}},
        "spec": {},
    }


def _big_config_map(namespace: str) -> dict[str, Any]:
    """A ConfigMap of `BIG_BYTES` of data: varied lines (compression must not make it trivial)."""
    lines, size, n = [], 0, 0
    while size < BIG_BYTES:
        digest = hashlib.sha256(str(n).encode()).hexdigest()
        line = f"{n:07d} {digest} {digest[::-1]}\n"
        lines.append(line)
        size += len(line)
        n += 1
    text = "".join(lines)[:BIG_BYTES]
    half = BIG_BYTES // 2
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": BIG_CONFIG_MAP, "namespace": namespace},
        "data": {"part-1.txt": text[:half], "part-2.txt": text[half:]},
    }


def _fixed_addresses(prefix: str, service_cidr: str, taken: frozenset[str]) -> tuple[str, int]:
    """A clusterIP and a nodePort chosen from the prefix, the first free ones from there on."""
    _check_prefix(prefix)
    network = ipaddress.ip_network(service_cidr, strict=False)
    seed = int.from_bytes(hashlib.sha256(prefix.encode()).digest()[:8], "big")
    # The first addresses are the API server's own service and the usual DNS address.
    low, high = 16, network.num_addresses - 2
    if high <= low:
        raise ValueError(f"service range {service_cidr} is too small for the corpus")
    offset = seed % (high - low)
    cluster_ip = next(
        str(network[low + (offset + step) % (high - low)])
        for step in range(high - low)
        if str(network[low + (offset + step) % (high - low)]) not in taken
    )
    first, last = NODE_PORTS
    span = last - first + 1
    node_port = next(
        first + (seed + step) % span for step in range(span) if str(first + (seed + step) % span) not in taken
    )
    return cluster_ip, node_port


def _service_cidr(client: kube.Client) -> str:
    """The cluster's IPv4 service range (its ServiceCIDR objects), or the API server's default."""
    try:
        for item in kube.list_items(client, ("networking.k8s.io/v1", "ServiceCIDR")):
            for cidr in (item.get("spec") or {}).get("cidrs") or []:
                if ipaddress.ip_network(cidr, strict=False).version == 4:
                    return str(cidr)
    except kube.NotFound:
        pass  # an API server older than ServiceCIDR objects
    return DEFAULT_SERVICE_CIDR


def _taken_addresses(client: kube.Client) -> frozenset[str]:
    """Every clusterIP and nodePort the cluster's Services already hold."""
    taken: set[str] = set()
    for service in kube.list_items(client, ("v1", "Service")):
        spec = service.get("spec") or {}
        taken.update(str(ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip)
        taken.update(str(port["nodePort"]) for port in spec.get("ports") or [] if port.get("nodePort"))
    return frozenset(taken)


def _load_order(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects sorted by rank; within a rank, objects with ownerReferences after the others."""

    def rank(obj: dict[str, Any]) -> tuple[int, int]:
        if obj["apiVersion"].startswith(f"{GROUP}/"):
            base = _CUSTOM_RANK
        else:
            base = _RANKS.get(obj["kind"], _OTHER_RANK)
        return base, 1 if obj["metadata"].get("ownerReferences") else 0

    return sorted(objects, key=rank)


def _put(client: kube.Client, obj: dict[str, Any], uids: dict[tuple[str, str, str], str]) -> dict[str, Any]:
    """Create one object (apply a shared one), owner uids filled in, status written if given."""
    if is_shared(obj):
        return kube.apply(client, obj)
    body = dict(obj)
    status = body.pop("status", None)
    namespace = obj["metadata"].get("namespace", "")
    refs = obj["metadata"].get("ownerReferences")
    if refs:
        linked = [{**ref, "uid": uids[(ref["kind"], namespace, ref["name"])]} for ref in refs]
        body["metadata"] = {**obj["metadata"], "ownerReferences": linked}
    made = kube.create(client, body)
    if status and obj["apiVersion"].startswith(f"{GROUP}/"):
        made = kube.patch(
            client,
            obj["apiVersion"],
            obj["kind"],
            obj["metadata"]["name"],
            {"status": status},
            namespace=namespace or None,
            subresource="status",
        )
    return made


def _wait_established(client: kube.Client, crds: list[dict[str, Any]]) -> None:
    """Wait until every CRD is Established and discovery serves its kind."""
    deadline = time.monotonic() + _WAIT
    pending = list(crds)
    while pending:
        crd = pending[0]
        found = kube.get(
            client, "apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"]
        )
        conditions = (found.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"CRD {crd['metadata']['name']} not Established after {_WAIT:.0f} s")
        time.sleep(0.2)
    wanted = [
        (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
        for crd in crds
        for version in crd["spec"]["versions"]
        if version.get("served")
    ]
    while True:
        served = kube.discovery(client, refresh=True)
        if all(served.find(api_version, kind) for api_version, kind in wanted):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"discovery does not serve all of {wanted} after {_WAIT:.0f} s")
        time.sleep(0.2)


def _strip_finalizers(client: kube.Client, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    with contextlib.suppress(kube.NotFound):  # never loaded, or its CRD is gone already
        kube.patch(
            client,
            obj["apiVersion"],
            obj["kind"],
            meta["name"],
            {"metadata": {"finalizers": None}},
            namespace=meta.get("namespace"),
        )


def _delete(client: kube.Client, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    # NotFound also when the kind itself is no longer served (its CRD was removed).
    with contextlib.suppress(kube.NotFound):
        kube.delete(client, obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["apiVersion"], obj["kind"], obj["metadata"]["name"]


def _wait_gone(client: kube.Client, objects: list[tuple[str, str, str]], *, again: bool = False) -> None:
    """Wait until deleted cluster-scoped objects (apiVersion, kind, name) are gone for good;
    with `again`, one a controller brought back (not being deleted) is deleted again."""
    deadline = time.monotonic() + _WAIT
    for api_version, kind, name in objects:
        while True:
            try:
                found = kube.get(client, api_version, kind, name)
            except kube.NotFound:
                break
            if again and not found["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(kube.NotFound):
                    kube.delete(client, api_version, kind, name)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} {name} still there {_WAIT:.0f} s after its deletion")
            time.sleep(0.25)
