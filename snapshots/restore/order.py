"""The order of a restore: phases that cannot race, and owners before the objects they own.

A phase is written completely (and, for CRDs, waited on until Established) before the next one
starts; inside a phase objects may be written concurrently, except that `sort_owned_last` puts an
owner before what it owns so that its new uid is known when the owned object is relinked.

Why this order:

- CRDs first: a custom resource (or anything referring to its kind) is refused until the CRD is
  Established.
- Namespaces before anything namespaced.
- Cluster-scoped prerequisites (StorageClasses, PriorityClasses, ClusterRoles and bindings,
  IngressClasses, RuntimeClasses, CSIDrivers, API priority and fairness) before the namespaced
  objects that name them: a Pod with an unknown priorityClassName is refused.
- ServiceAccounts before Secrets (a token Secret names its account) and before workloads.
- Secrets and ConfigMaps before the workloads that mount them, so no Pod starts without them.
- Roles, bindings, LimitRanges and ResourceQuotas before the objects they constrain: a LimitRange
  restored after the Pods would leave them without its defaults.
- PersistentVolumes and claims before workloads: a StatefulSet whose claims already exist binds
  them rather than provisioning empty ones.
- Services before workloads: Pods get the Service environment variables only for Services that
  exist when they start.
- Workload controllers (Deployments, StatefulSets, DaemonSets, ReplicaSets and Jobs without a
  controller, CronJobs, bare Pods), then every other built-in (Ingress, NetworkPolicy, HPA, PDB...),
  then custom resources (their controllers usually expect the built-ins to exist).
- Admission webhooks and admission policies at the very end: a webhook restored before its Service
  and Deployment answer would refuse (failurePolicy Fail) or time out every later write of the
  restore, and a policy could refuse objects that the source cluster accepted before it existed.

Ownership can cross phases (a ConfigMap owned by a Deployment, a custom resource owning a
Secret): `plan_phases` moves an owned object to its owner's phase when that is later, except
PersistentVolumeClaims, which stay before the workloads (a StatefulSet would otherwise provision an
empty claim of the same name first; its controller sets the claim's owner again itself).
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from snapshots.selection import split_api_version

PHASE_CRDS = 10
PHASE_NAMESPACES = 20
PHASE_CLUSTER = 30
PHASE_SERVICE_ACCOUNTS = 40
PHASE_CONFIG = 50
PHASE_POLICY = 60
PHASE_STORAGE = 70
PHASE_SERVICES = 80
PHASE_WORKLOADS = 90
PHASE_OTHER = 100
PHASE_CUSTOM = 110
PHASE_ADMISSION = 120

PHASES: tuple[tuple[int, str], ...] = (
    (PHASE_CRDS, "Custom resource definitions (then wait until Established)"),
    (PHASE_NAMESPACES, "Namespaces"),
    (PHASE_CLUSTER, "Cluster-wide prerequisites (storage, priority and ingress classes, RBAC)"),
    (PHASE_SERVICE_ACCOUNTS, "Service accounts"),
    (PHASE_CONFIG, "Secrets and ConfigMaps"),
    (PHASE_POLICY, "Roles, role bindings, limit ranges and quotas"),
    (PHASE_STORAGE, "Persistent volumes and claims"),
    (PHASE_SERVICES, "Services"),
    (PHASE_WORKLOADS, "Workload controllers"),
    (PHASE_OTHER, "Other built-in objects"),
    (PHASE_CUSTOM, "Custom resources"),
    (PHASE_ADMISSION, "Admission webhooks and policies"),
)
PHASE_LABELS: Mapping[int, str] = dict(PHASES)

# The groups Kubernetes itself serves; anything else is a CRD's or an aggregated API's.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)

_BY_KIND: Mapping[tuple[str, str], int] = {
    ("apiextensions.k8s.io", "CustomResourceDefinition"): PHASE_CRDS,
    ("", "Namespace"): PHASE_NAMESPACES,
    ("storage.k8s.io", "StorageClass"): PHASE_CLUSTER,
    ("storage.k8s.io", "CSIDriver"): PHASE_CLUSTER,
    ("storage.k8s.io", "VolumeAttributesClass"): PHASE_CLUSTER,
    ("scheduling.k8s.io", "PriorityClass"): PHASE_CLUSTER,
    ("rbac.authorization.k8s.io", "ClusterRole"): PHASE_CLUSTER,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): PHASE_CLUSTER,
    ("networking.k8s.io", "IngressClass"): PHASE_CLUSTER,
    ("node.k8s.io", "RuntimeClass"): PHASE_CLUSTER,
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"): PHASE_CLUSTER,
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"): PHASE_CLUSTER,
    ("", "ServiceAccount"): PHASE_SERVICE_ACCOUNTS,
    ("", "Secret"): PHASE_CONFIG,
    ("", "ConfigMap"): PHASE_CONFIG,
    ("rbac.authorization.k8s.io", "Role"): PHASE_POLICY,
    ("rbac.authorization.k8s.io", "RoleBinding"): PHASE_POLICY,
    ("", "LimitRange"): PHASE_POLICY,
    ("", "ResourceQuota"): PHASE_POLICY,
    ("", "PersistentVolume"): PHASE_STORAGE,
    ("", "PersistentVolumeClaim"): PHASE_STORAGE,
    ("", "Service"): PHASE_SERVICES,
    ("apps", "Deployment"): PHASE_WORKLOADS,
    ("apps", "StatefulSet"): PHASE_WORKLOADS,
    ("apps", "DaemonSet"): PHASE_WORKLOADS,
    ("apps", "ReplicaSet"): PHASE_WORKLOADS,
    ("", "ReplicationController"): PHASE_WORKLOADS,
    ("batch", "Job"): PHASE_WORKLOADS,
    ("batch", "CronJob"): PHASE_WORKLOADS,
    ("", "Pod"): PHASE_WORKLOADS,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): PHASE_ADMISSION,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): PHASE_ADMISSION,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): PHASE_ADMISSION,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): PHASE_ADMISSION,
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"): PHASE_ADMISSION,
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"): PHASE_ADMISSION,
}


def is_custom(group: str, crd_groups: Collection[str]) -> bool:
    """Whether the group is served by a CRD (of the snapshot or of the target)."""
    return group in crd_groups


def phase_of(group: str, kind: str, *, crd_groups: Collection[str] = frozenset()) -> int:
    """The phase number of a kind; smaller phases are restored first."""
    if is_custom(group, crd_groups):
        return PHASE_CUSTOM
    known = _BY_KIND.get((group, kind))
    if known is not None:
        return known
    return PHASE_OTHER if group in BUILTIN_GROUPS else PHASE_CUSTOM


def phase_of_object(obj: Mapping[str, Any], *, crd_groups: Collection[str] = frozenset()) -> int:
    """The phase of one object by its apiVersion and kind (ownership not considered)."""
    group, _ = split_api_version(str(obj.get("apiVersion", "")))
    return phase_of(group, str(obj.get("kind", "")), crd_groups=crd_groups)


def describe(obj: Mapping[str, Any]) -> str:
    """``Kind namespace/name`` (or ``Kind name``), as reports and notes name an object."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = metadata.get("name", "?")
    return f"{obj.get('kind', '?')} {namespace}/{name}" if namespace else f"{obj.get('kind', '?')} {name}"


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _owner_refs(obj: Mapping[str, Any]) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(ref.get("uid")) for ref in refs if isinstance(ref, Mapping) and ref.get("uid")]


def order_owners(objects: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Owners before the objects they own, otherwise the input order; notes name broken cycles.

    Only references to objects of the same batch count. When every remaining object waits on
    another (a cycle of ownerReferences), the earliest one is taken first and a note says so: its
    reference to the object not yet restored will then be dropped by `owners.relink`.
    """
    items = list(objects)
    index_of: dict[str, int] = {}
    for index, obj in enumerate(items):
        uid = _uid(obj)
        if uid:
            index_of.setdefault(uid, index)
    waits_on: list[set[int]] = []
    owned_by: list[list[int]] = [[] for _ in items]
    for index, obj in enumerate(items):
        owners = {index_of[uid] for uid in _owner_refs(obj) if uid in index_of} - {index}
        waits_on.append(owners)
        for owner in owners:
            owned_by[owner].append(index)
    ready = [index for index, owners in enumerate(waits_on) if not owners]
    heapq.heapify(ready)
    placed = [False] * len(items)
    result: list[dict[str, Any]] = []
    notes: list[str] = []

    def place(index: int) -> None:
        placed[index] = True
        result.append(items[index])
        for child in owned_by[index]:
            pending = waits_on[child]
            if index in pending:
                pending.discard(index)
                if not pending and not placed[child]:
                    heapq.heappush(ready, child)

    while len(result) < len(items):
        while ready:
            index = heapq.heappop(ready)
            if not placed[index]:
                place(index)
        if len(result) == len(items):
            break
        first = next(index for index, done in enumerate(placed) if not done)
        cycle = _cycle_from(first, waits_on, placed)
        breaker = min(cycle)
        notes.append(
            "ownerReferences form a cycle ("
            + " → ".join(describe(items[i]) for i in cycle)
            + f"): {describe(items[breaker])} was restored first, without its reference to an "
            "owner not yet restored"
        )
        waits_on[breaker] = set()
        place(breaker)
    return result, notes


def _cycle_from(start: int, waits_on: list[set[int]], placed: list[bool]) -> list[int]:
    # Follow the smallest pending owner from `start` until an index repeats: that loop is a cycle
    # (every unplaced object waits on an unplaced one, so the walk cannot stop early).
    path: list[int] = []
    seen: dict[int, int] = {}
    current = start
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        pending = sorted(owner for owner in waits_on[current] if not placed[owner])
        if not pending:
            return path
        current = pending[0]
    return [*path[seen[current] :], current]


def sort_owned_last(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`order_owners` without its notes: owners first, otherwise stable."""
    return order_owners(objects)[0]


def plan_phases(
    objects: Iterable[dict[str, Any]], *, crd_groups: Collection[str] = frozenset()
) -> tuple[list[tuple[int, list[dict[str, Any]]]], list[str]]:
    """Objects grouped into phases (in order), owners first inside each, plus notes of cycles.

    An owned object moves to its owner's phase when that comes later (PVCs excepted, see the
    module docstring). The objects are not copied: pass light ones (apiVersion, kind, metadata's
    name, namespace, uid and ownerReferences) to plan a large restore in little memory.
    """
    items = list(objects)
    phases = [phase_of_object(obj, crd_groups=crd_groups) for obj in items]
    index_of = {_uid(obj): index for index, obj in enumerate(items) if _uid(obj)}
    owners = [[index_of[uid] for uid in _owner_refs(obj) if uid in index_of] for obj in items]
    movable = [
        not (
            split_api_version(str(obj.get("apiVersion", "")))[0] == ""
            and obj.get("kind") == "PersistentVolumeClaim"
        )
        for obj in items
    ]
    # Phases only grow and are bounded, so this reaches a fixed point (cycles included).
    changed = True
    while changed:
        changed = False
        for index, owner_indexes in enumerate(owners):
            if not movable[index]:
                continue
            for owner in owner_indexes:
                if phases[owner] > phases[index]:
                    phases[index] = phases[owner]
                    changed = True
    grouped: dict[int, list[dict[str, Any]]] = {}
    for index, obj in enumerate(items):
        grouped.setdefault(phases[index], []).append(obj)
    batches: list[tuple[int, list[dict[str, Any]]]] = []
    notes: list[str] = []
    for phase in sorted(grouped):
        ordered, cycle_notes = order_owners(grouped[phase])
        batches.append((phase, ordered))
        notes.extend(cycle_notes)
    return batches, notes
