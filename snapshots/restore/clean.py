"""What a restore leaves out, and how it cleans an object from the source for the target.

`skip_reason` says why an object is never restored (it belongs to the source cluster, the target
makes its own, or a controller will recreate it); `clean` turns a kept object into what is written.

What `clean` removes, and why:

- ``metadata``: uid, resourceVersion, creationTimestamp, deletionTimestamp,
  deletionGracePeriodSeconds, generation, managedFields, selfLink — the API server sets them. An
  object that was being deleted in the source (deletionTimestamp set) is therefore restored alive,
  finalizers and all: finalizers are the user's (or their controller's) and are **kept**.
- ``status`` of every kind: none of the built-ins restored here needs it (the API server ignores it
  on create for kinds with a status subresource), and a CRD's status (accepted names, conditions)
  is recomputed by the API server. Custom resources' status is dropped too: their controllers
  rebuild it from the spec, and a stale status would claim work the target has not done.
- The annotations in `CONTROLLER_ANNOTATIONS` (written by controllers about the source cluster);
  ``kubectl.kubernetes.io/last-applied-configuration`` and ``kubernetes.io/change-cause`` are the
  user's and are kept.
- PersistentVolumeClaims: ``spec.volumeName`` (the source's volume; a new one is bound) and the
  binding annotations. PersistentVolumes: ``spec.claimRef``'s uid and resourceVersion (the claim is
  new; keeping its namespace and name pre-binds the volume to the restored claim).
- Jobs without ``manualSelector: true``: the generated ``spec.selector``, ``manualSelector`` and
  the controller-uid labels of the template, so that the API server generates new ones.
- ServiceAccount token Secrets: the token, ``ca.crt`` and ``namespace`` data and the account's uid
  annotation. The source's token is signed by the source's key and would be useless; the target's
  token controller fills a new one in for the restored account.
- Namespaces: the ``kubernetes.io/metadata.name`` label, which the API server sets to the name (and
  which a namespace mapping would otherwise contradict).

What `clean` maps (namespace_map: source → target namespace):

- ``metadata.namespace``, and a Namespace object's own name;
- RoleBinding and ClusterRoleBinding subjects of kind ServiceAccount (``subjects[].namespace``);
- PersistentVolume ``spec.claimRef.namespace``;
- webhook configurations' and CRD conversion webhooks' ``clientConfig.service.namespace``;
- NetworkPolicy peers' namespaceSelector on ``kubernetes.io/metadata.name`` (matchLabels and
  matchExpressions values).

Not mapped (documented limits): DNS names inside values (``svc.shop.svc.cluster.local``), pod
affinity terms' ``namespaces`` lists, and namespaces named inside custom resources' specs.

Storage classes (storage_class_map: source → target class) are mapped in PVC
``spec.storageClassName`` (and the old beta annotation), PV ``spec.storageClassName``,
StatefulSet ``volumeClaimTemplates[].spec.storageClassName`` and the generic ephemeral volumes of
every pod template.

Services' clusterIP(s) and nodePorts are left alone here: `network.service_ips` handles them
against what the target already uses.
"""

from __future__ import annotations

import copy
from collections.abc import Container, Mapping
from types import MappingProxyType
from typing import Any

import orjson

from snapshots.selection import split_api_version

NO_MAP: Mapping[str, str] = MappingProxyType({})

SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
)

# Written by controllers about the source cluster's state; the target's controllers write their own.
CONTROLLER_ANNOTATIONS = frozenset(
    {
        "deployment.kubernetes.io/revision",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.daemonset.template.generation",
        "batch.kubernetes.io/job-tracking",
        "batch.kubernetes.io/cronjob-scheduled-timestamp",
        "endpoints.kubernetes.io/last-change-trigger-time",
        "control-plane.alpha.kubernetes.io/leader",
        "pv.kubernetes.io/bind-completed",
        "pv.kubernetes.io/bound-by-controller",
        "volume.beta.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/selected-node",
    }
)
_PVC_ANNOTATION_PREFIXES = ("pv.kubernetes.io/",)
JOB_CONTROLLER_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
PROVISIONED_BY_ANNOTATION = "pv.kubernetes.io/provisioned-by"
BOOTSTRAP_LABEL = "kubernetes.io/bootstrapping"
APF_AUTOUPDATE_ANNOTATION = "apf.kubernetes.io/autoupdate-spec"
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "default"})

# (group, kind) → why it is never restored.
NEVER_RESTORED: Mapping[tuple[str, str], str] = {
    ("", "Node"): "nodes belong to the target cluster",
    ("", "Event"): "events are the source's history, not state",
    ("events.k8s.io", "Event"): "events are the source's history, not state",
    ("apps", "ControllerRevision"): "its controller records new revisions",
    ("apiregistration.k8s.io", "APIService"): "aggregated APIs are the target's own",
    ("certificates.k8s.io", "CertificateSigningRequest"): "signed by the source cluster's CA",
    ("", "ComponentStatus"): "reported by the target's control plane",
    ("", "Binding"): "not an object: a request to the scheduler",
    ("authentication.k8s.io", "TokenReview"): "not an object: a request",
    ("authentication.k8s.io", "SelfSubjectReview"): "not an object: a request",
    ("authorization.k8s.io", "SubjectAccessReview"): "not an object: a request",
    ("authorization.k8s.io", "SelfSubjectAccessReview"): "not an object: a request",
    ("authorization.k8s.io", "SelfSubjectRulesReview"): "not an object: a request",
    ("authorization.k8s.io", "LocalSubjectAccessReview"): "not an object: a request",
}
# Explained in `skip_reason`, which needs more than the kind to decide them.
NEVER_RESTORED_RULES: tuple[str, ...] = (
    "the namespaces kube-system, kube-public, kube-node-lease and default as objects: they exist",
    "objects of the kube-* namespaces, unless the selection includes them explicitly",
    "the 'kubernetes' Service (and its Endpoints and EndpointSlice) in default",
    "Leases in kube-node-lease (node heartbeats) and kube-system (control-plane leader election)",
    "Endpoints and EndpointSlices made by the endpoint controllers for a Service with a selector",
    "the kube-root-ca.crt ConfigMap: the target publishes its own CA in every namespace",
    "system: and rbac-defaults ClusterRoles and bindings: bootstrap RBAC the API server reconciles",
    "the system- PriorityClasses and the auto-updated API priority and fairness objects",
    "PersistentVolumes a provisioner made (pv.kubernetes.io/provisioned-by): the target provisions",
    "Pods, ReplicaSets, Jobs and ephemeral-volume claims owned by their controller (controller=true),"
    " which makes them again",
)

# Owner kind (controller=true) → kinds it makes again in the target.
_CONTROLLERS: Mapping[tuple[str, str], frozenset[str]] = {
    ("apps", "Deployment"): frozenset({"ReplicaSet"}),
    ("apps", "ReplicaSet"): frozenset({"Pod"}),
    ("apps", "StatefulSet"): frozenset({"Pod"}),
    ("apps", "DaemonSet"): frozenset({"Pod"}),
    ("batch", "Job"): frozenset({"Pod"}),
    ("batch", "CronJob"): frozenset({"Job"}),
    ("", "ReplicationController"): frozenset({"Pod"}),
    # A generic ephemeral volume's claim is made with its Pod; restored alone it would block a
    # StatefulSet's new Pod of the same name from getting its own.
    ("", "Pod"): frozenset({"PersistentVolumeClaim"}),
    # Mirror pods of static pods: the target's kubelets publish their own.
    ("", "Node"): frozenset({"Pod"}),
}
_ENDPOINTSLICE_CONTROLLERS = frozenset(
    {"endpointslice-controller.k8s.io", "endpointslicemirroring-controller.k8s.io"}
)


def _group_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    group, _ = split_api_version(str(obj.get("apiVersion", "")))
    return group, str(obj.get("kind", ""))


def controller_owner(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with controller=true, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref
    return None


def json_copy(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object (orjson's round trip is many times faster than deepcopy,
    which a restore of 100,000 objects does several times each)."""
    try:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(obj))
        return copied
    except (TypeError, orjson.JSONEncodeError):  # a lone surrogate: deepcopy keeps it
        return copy.deepcopy(dict(obj))


def skip_reason(
    obj: Mapping[str, Any],
    *,
    explicitly_included_namespaces: Container[str] = frozenset(),
    services_with_selector: Container[tuple[str, str]] = frozenset(),
) -> str | None:
    """Why this object is never restored, or None when it is.

    `explicitly_included_namespaces` holds the kube-* namespaces the selection names deliberately
    (see `Selection.explicitly_includes`); `services_with_selector` holds (namespace, name) of the
    snapshot's Services with a selector, whose Endpoints the target's controller makes.
    """
    group, kind = _group_kind(obj)
    metadata = obj.get("metadata") or {}
    name = str(metadata.get("name", ""))
    namespace = str(metadata.get("namespace") or "")
    labels = metadata.get("labels") or {}
    fixed = NEVER_RESTORED.get((group, kind))
    if fixed is not None:
        return fixed
    if group == "" and kind == "Namespace" and name in SYSTEM_NAMESPACES:
        return f"the namespace {name} exists in every cluster"
    kube_namespace = name.startswith("kube-") and name not in explicitly_included_namespaces
    if group == "" and kind == "Namespace" and kube_namespace:
        return f"the system namespace {name}, which the selection does not name explicitly"
    if namespace.startswith("kube-") and namespace not in explicitly_included_namespaces:
        return f"in the system namespace {namespace}, which the selection does not name explicitly"
    if group == "coordination.k8s.io" and kind == "Lease" and namespace in ("kube-node-lease", "kube-system"):
        return "a heartbeat or leader-election lease of the source cluster"
    if (
        namespace == "default"
        and name == "kubernetes"
        and (group, kind)
        in (
            ("", "Service"),
            ("", "Endpoints"),
            ("discovery.k8s.io", "EndpointSlice"),
        )
    ):
        return "the API server's own Service, which the target has"
    managed_by = labels.get("endpointslice.kubernetes.io/managed-by")
    if group == "discovery.k8s.io" and kind == "EndpointSlice" and managed_by in _ENDPOINTSLICE_CONTROLLERS:
        return "made by the endpoint slice controller from its Service"
    if group == "" and kind == "Endpoints" and (namespace, name) in services_with_selector:
        return f"made by the endpoints controller from the Service {name}"
    if group == "" and kind == "ConfigMap" and name == "kube-root-ca.crt":
        return "the target publishes its own root CA in every namespace"
    annotations = metadata.get("annotations") or {}
    cluster_rbac = group == "rbac.authorization.k8s.io" and kind in ("ClusterRole", "ClusterRoleBinding")
    if cluster_rbac and (name.startswith("system:") or labels.get(BOOTSTRAP_LABEL) == "rbac-defaults"):
        return "bootstrap RBAC, reconciled by the target's API server"
    if group == "scheduling.k8s.io" and kind == "PriorityClass" and name.startswith("system-"):
        return "a built-in priority class of every cluster"
    if group == "flowcontrol.apiserver.k8s.io" and annotations.get(APF_AUTOUPDATE_ANNOTATION) == "true":
        return "built-in API priority and fairness configuration, reconciled by the target's API server"
    if group == "" and kind == "PersistentVolume" and PROVISIONED_BY_ANNOTATION in annotations:
        # Restoring it would point two clusters at one disk (and with reclaimPolicy Delete, let
        # the target delete the source's data); the target provisions its own for the claim.
        return "provisioned for the source's claim: the target provisions a volume for the restored claim"
    owner = controller_owner(obj)
    if owner is not None:
        owner_group, _ = split_api_version(str(owner.get("apiVersion", "")))
        made = _CONTROLLERS.get((owner_group, str(owner.get("kind", ""))), frozenset())
        if group in ("", "apps", "batch") and kind in made:
            return f"managed by its {owner.get('kind')} {owner.get('name')}: the controller makes it again"
    return None


def created_by_target(obj: Mapping[str, Any]) -> str | None:
    """Why the target makes this object itself as soon as its namespace exists, or None.

    Such an object is restored (it may carry the user's changes, e.g. a default ServiceAccount's
    imagePullSecrets) but races the target's controller: the restore should treat "already
    exists" as an update whatever the existing-object policy, not as a conflict.
    """
    group, kind = _group_kind(obj)
    name = str((obj.get("metadata") or {}).get("name", ""))
    if group == "" and kind == "ServiceAccount" and name == "default":
        return "the service account controller makes the default account in every namespace"
    return None


def clean(
    obj: Mapping[str, Any],
    *,
    namespace_map: Mapping[str, str] = NO_MAP,
    storage_class_map: Mapping[str, str] = NO_MAP,
) -> dict[str, Any]:
    """A deep copy of a source object, ready to write to the target (see the module docstring)."""
    result: dict[str, Any] = json_copy(obj)
    group, kind = _group_kind(result)
    metadata: dict[str, Any] = result.setdefault("metadata", {})
    for key in SERVER_METADATA:
        metadata.pop(key, None)
    result.pop("status", None)
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        for key in list(annotations):
            if key in CONTROLLER_ANNOTATIONS:
                del annotations[key]
    _map_namespace(result, group, kind, namespace_map)
    spec = result.get("spec")
    if group == "" and kind == "PersistentVolumeClaim":
        _clean_claim(result, storage_class_map)
    elif group == "" and kind == "PersistentVolume" and isinstance(spec, dict):
        _map_class(spec, "storageClassName", storage_class_map)
        claim_ref = spec.get("claimRef")
        if isinstance(claim_ref, dict):
            claim_ref.pop("uid", None)
            claim_ref.pop("resourceVersion", None)
    elif group == "batch" and kind == "Job" and isinstance(spec, dict):
        _clean_job(spec)
    elif group == "" and kind == "Secret" and result.get("type") == SA_TOKEN_TYPE:
        data = result.get("data")
        if isinstance(data, dict):
            for key in ("token", "ca.crt", "namespace"):
                data.pop(key, None)
        if isinstance(annotations, dict):
            annotations.pop(SA_UID_ANNOTATION, None)
    elif group == "" and kind == "Namespace":
        labels = metadata.get("labels")
        if isinstance(labels, dict):
            labels.pop(NAMESPACE_NAME_LABEL, None)
    if group == "apps" and kind == "StatefulSet" and isinstance(spec, dict):
        for template in spec.get("volumeClaimTemplates") or []:
            if isinstance(template, dict) and isinstance(template.get("spec"), dict):
                _map_class(template["spec"], "storageClassName", storage_class_map)
    if storage_class_map:
        for pod_spec in _pod_specs(result, group, kind):
            for volume in pod_spec.get("volumes") or []:
                claim = ((volume or {}).get("ephemeral") or {}).get("volumeClaimTemplate") or {}
                if isinstance(claim.get("spec"), dict):
                    _map_class(claim["spec"], "storageClassName", storage_class_map)
    for key in ("annotations", "labels"):
        if metadata.get(key) == {}:
            del metadata[key]
    return result


def _map_class(spec: dict[str, Any], key: str, storage_class_map: Mapping[str, str]) -> None:
    current = spec.get(key)
    if isinstance(current, str) and current in storage_class_map:
        spec[key] = storage_class_map[current]


def _clean_claim(claim: dict[str, Any], storage_class_map: Mapping[str, str]) -> None:
    spec = claim.get("spec")
    if isinstance(spec, dict):
        spec.pop("volumeName", None)
        _map_class(spec, "storageClassName", storage_class_map)
    annotations = claim["metadata"].get("annotations")
    if isinstance(annotations, dict):
        for key in list(annotations):
            if key.startswith(_PVC_ANNOTATION_PREFIXES):
                del annotations[key]
        _map_class(annotations, "volume.beta.kubernetes.io/storage-class", storage_class_map)


def _clean_job(spec: dict[str, Any]) -> None:
    # With manualSelector the selector is the user's; otherwise the API server generated it from
    # the source Job's uid and generates a fresh one (it refuses a create that names an old one).
    if spec.get("manualSelector") is True:
        return
    spec.pop("manualSelector", None)
    spec.pop("selector", None)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        for key in JOB_CONTROLLER_LABELS:
            labels.pop(key, None)


def _pod_specs(obj: dict[str, Any], group: str, kind: str) -> list[dict[str, Any]]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    if group == "" and kind == "Pod":
        return [spec]
    if group == "batch" and kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template_spec = (spec.get("template") or {}).get("spec")
    return [template_spec] if isinstance(template_spec, dict) else []


def _mapped(namespace: Any, namespace_map: Mapping[str, str]) -> Any:
    return namespace_map.get(namespace, namespace) if isinstance(namespace, str) else namespace


def _map_namespace(obj: dict[str, Any], group: str, kind: str, namespace_map: Mapping[str, str]) -> None:
    if not namespace_map:
        return
    metadata = obj["metadata"]
    if "namespace" in metadata:
        metadata["namespace"] = _mapped(metadata["namespace"], namespace_map)
    if group == "" and kind == "Namespace":
        metadata["name"] = _mapped(metadata.get("name"), namespace_map)
    if group == "rbac.authorization.k8s.io" and kind in ("RoleBinding", "ClusterRoleBinding"):
        for subject in obj.get("subjects") or []:
            if isinstance(subject, dict) and subject.get("kind") == "ServiceAccount":
                subject["namespace"] = _mapped(subject.get("namespace"), namespace_map)
    spec = obj.get("spec")
    if group == "" and kind == "PersistentVolume" and isinstance(spec, dict):
        claim_ref = spec.get("claimRef")
        if isinstance(claim_ref, dict) and "namespace" in claim_ref:
            claim_ref["namespace"] = _mapped(claim_ref["namespace"], namespace_map)
    if group == "admissionregistration.k8s.io" and kind.endswith("WebhookConfiguration"):
        for webhook in obj.get("webhooks") or []:
            _map_service_ref(((webhook or {}).get("clientConfig") or {}).get("service"), namespace_map)
    if group == "apiextensions.k8s.io" and kind == "CustomResourceDefinition" and isinstance(spec, dict):
        webhook = (spec.get("conversion") or {}).get("webhook") or {}
        _map_service_ref((webhook.get("clientConfig") or {}).get("service"), namespace_map)
    if group == "networking.k8s.io" and kind == "NetworkPolicy" and isinstance(spec, dict):
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction) or []:
                for peer in (rule or {}).get(peers_key) or []:
                    _map_namespace_selector((peer or {}).get("namespaceSelector"), namespace_map)


def _map_service_ref(service: Any, namespace_map: Mapping[str, str]) -> None:
    if isinstance(service, dict) and "namespace" in service:
        service["namespace"] = _mapped(service["namespace"], namespace_map)


def _map_namespace_selector(selector: Any, namespace_map: Mapping[str, str]) -> None:
    if not isinstance(selector, dict):
        return
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, dict) and NAMESPACE_NAME_LABEL in match_labels:
        match_labels[NAMESPACE_NAME_LABEL] = _mapped(match_labels[NAMESPACE_NAME_LABEL], namespace_map)
    for expression in selector.get("matchExpressions") or []:
        if isinstance(expression, dict) and expression.get("key") == NAMESPACE_NAME_LABEL:
            expression["values"] = [_mapped(value, namespace_map) for value in expression.get("values") or []]
