"""What a restore leaves out, and how it cleans and maps what it keeps."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from snapshots.restore.clean import clean, created_by_target, skip_reason


def obj(
    kind: str, name: str, namespace: str | None = "shop", api: str = "v1", **extra: Any
) -> dict[str, Any]:
    """An object as a snapshot holds it, with the server-set metadata."""
    metadata: dict[str, Any] = {
        "name": name,
        "uid": "0a1b",
        "resourceVersion": "123",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "generation": 4,
        "managedFields": [{"manager": "kubectl"}],
        "selfLink": "/x",
    }
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": api, "kind": kind, "metadata": metadata, **extra}


def owned(
    thing: dict[str, Any], kind: str, name: str, api: str, *, controller: bool = True
) -> dict[str, Any]:
    """The object with an ownerReference."""
    thing["metadata"]["ownerReferences"] = [
        {"apiVersion": api, "kind": kind, "name": name, "uid": "o1", "controller": controller}
    ]
    return thing


@pytest.mark.parametrize(
    "thing",
    [
        obj("Node", "n1", None),
        obj("Event", "e", api="v1"),
        obj("Event", "e", api="events.k8s.io/v1"),
        obj("ControllerRevision", "r", api="apps/v1"),
        obj("APIService", "v1beta1.metrics.k8s.io", None, api="apiregistration.k8s.io/v1"),
        obj("CertificateSigningRequest", "c", None, api="certificates.k8s.io/v1"),
        obj("Namespace", "kube-system", None),
        obj("Namespace", "default", None),
        obj("Namespace", "kube-extra", None),
        obj("Lease", "node-1", "kube-node-lease", api="coordination.k8s.io/v1"),
        obj("ConfigMap", "settings", "kube-system"),
        obj("Service", "kubernetes", "default"),
        obj("Endpoints", "kubernetes", "default"),
        obj("ConfigMap", "kube-root-ca.crt"),
        obj("ClusterRole", "system:controller:x", None, api="rbac.authorization.k8s.io/v1"),
        obj("ClusterRoleBinding", "system:basic-user", None, api="rbac.authorization.k8s.io/v1"),
        owned(obj("Pod", "web-1"), "ReplicaSet", "web-5d8", "apps/v1"),
        owned(obj("ReplicaSet", "web-5d8", api="apps/v1"), "Deployment", "web", "apps/v1"),
        owned(obj("Pod", "db-0"), "StatefulSet", "db", "apps/v1"),
        owned(obj("Job", "nightly-1", api="batch/v1"), "CronJob", "nightly", "batch/v1"),
        owned(obj("Pod", "nightly-1-x"), "Job", "nightly-1", "batch/v1"),
        owned(obj("PersistentVolumeClaim", "db-0-scratch"), "Pod", "db-0", "v1"),
        owned(obj("Pod", "etcd-node-a", "tools"), "Node", "node-a", "v1"),
    ],
    ids=lambda thing: f"{thing['kind']}-{thing['metadata']['name']}",
)
def test_never_restored(thing: dict[str, Any]) -> None:
    assert skip_reason(thing)


@pytest.mark.parametrize(
    "thing",
    [
        obj("ConfigMap", "settings"),
        obj("Namespace", "shop", None),
        obj("ClusterRole", "shop-reader", None, api="rbac.authorization.k8s.io/v1"),
        obj("Service", "kubernetes", "shop"),
        obj("Lease", "my-lock", api="coordination.k8s.io/v1"),
        obj("Pod", "bare"),
        obj("ReplicaSet", "lonely", api="apps/v1"),
        owned(obj("Pod", "p"), "ReplicaSet", "rs", "apps/v1", controller=False),
        owned(obj("ConfigMap", "c"), "Deployment", "web", "apps/v1"),
        owned(obj("Pod", "p"), "Widget", "w", "example.com/v1"),
        owned(obj("PersistentVolumeClaim", "data-db-0"), "StatefulSet", "db", "apps/v1"),
        obj("PersistentVolume", "static", None, spec={"hostPath": {"path": "/d"}}),
        obj("Secret", "sa-token", type="kubernetes.io/service-account-token"),
    ],
    ids=lambda thing: f"{thing['kind']}-{thing['metadata']['name']}",
)
def test_restored(thing: dict[str, Any]) -> None:
    assert skip_reason(thing) is None


def test_reasons_are_specific() -> None:
    pod = owned(obj("Pod", "web-1"), "Deployment", "web", "apps/v1")
    pod["kind"] = "ReplicaSet"
    pod["apiVersion"] = "apps/v1"
    assert skip_reason(pod) == "managed by its Deployment web: the controller makes it again"
    assert "kube-system" in (skip_reason(obj("ConfigMap", "x", "kube-system")) or "")


def test_kube_namespaces_restored_when_explicitly_included() -> None:
    config = obj("ConfigMap", "settings", "kube-extra")
    namespace = obj("Namespace", "kube-extra", None)
    assert skip_reason(config) and skip_reason(namespace)
    assert skip_reason(config, explicitly_included_namespaces=frozenset({"kube-extra"})) is None
    assert skip_reason(namespace, explicitly_included_namespaces=frozenset({"kube-extra"})) is None
    # kube-system exists in every cluster: its Namespace object is never written, its leases neither.
    assert skip_reason(obj("Namespace", "kube-system", None), explicitly_included_namespaces={"kube-system"})
    lease = obj("Lease", "kube-scheduler", "kube-system", api="coordination.k8s.io/v1")
    assert skip_reason(lease, explicitly_included_namespaces={"kube-system"})
    assert (
        skip_reason(obj("ConfigMap", "mine", "kube-system"), explicitly_included_namespaces={"kube-system"})
        is None
    )


def test_endpoints_of_services_with_a_selector() -> None:
    endpoints = obj("Endpoints", "web")
    assert skip_reason(endpoints) is None
    assert skip_reason(endpoints, services_with_selector={("shop", "web")})
    assert skip_reason(endpoints, services_with_selector={("other", "web")}) is None
    managed = obj("EndpointSlice", "web-abc", api="discovery.k8s.io/v1")
    managed["metadata"]["labels"] = {
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"
    }
    assert skip_reason(managed)
    mine = obj("EndpointSlice", "external", api="discovery.k8s.io/v1")
    mine["metadata"]["labels"] = {"endpointslice.kubernetes.io/managed-by": "me"}
    assert skip_reason(mine) is None


def test_provisioned_volumes_are_left_to_the_target() -> None:
    volume = obj("PersistentVolume", "pvc-1", None)
    volume["metadata"]["annotations"] = {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}
    assert skip_reason(volume)


def test_server_fields_removed_and_input_untouched() -> None:
    source = obj("ConfigMap", "c", data={"a": "1"}, status={"x": 1})
    source["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    source["metadata"]["deletionGracePeriodSeconds"] = 30
    source["metadata"]["finalizers"] = ["example.com/keep"]
    before = copy.deepcopy(source)
    cleaned = clean(source)
    assert source == before
    assert cleaned == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "shop", "finalizers": ["example.com/keep"]},
        "data": {"a": "1"},
    }


def test_annotations_user_kept_controllers_dropped() -> None:
    deployment = obj("Deployment", "web", api="apps/v1", spec={"replicas": 2})
    deployment["metadata"]["annotations"] = {
        "deployment.kubernetes.io/revision": "3",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "team": "a",
    }
    cleaned = clean(deployment)
    assert cleaned["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "team": "a",
    }
    only_controller = obj("DaemonSet", "d", api="apps/v1")
    only_controller["metadata"]["annotations"] = {"deprecated.daemonset.template.generation": "1"}
    assert "annotations" not in clean(only_controller)["metadata"]


def test_claim_loses_its_volume_and_maps_its_class() -> None:
    claim = obj(
        "PersistentVolumeClaim",
        "data",
        spec={
            "volumeName": "pvc-123",
            "storageClassName": "fast",
            "resources": {"requests": {"storage": "1Gi"}},
        },
        status={"phase": "Bound"},
    )
    claim["metadata"]["annotations"] = {
        "pv.kubernetes.io/bind-completed": "yes",
        "pv.kubernetes.io/bound-by-controller": "yes",
        "volume.kubernetes.io/selected-node": "node-a",
        "volume.kubernetes.io/storage-provisioner": "x",
        "volume.beta.kubernetes.io/storage-class": "fast",
        "backup": "daily",
    }
    cleaned = clean(claim, storage_class_map={"fast": "standard"})
    assert cleaned["spec"] == {"storageClassName": "standard", "resources": {"requests": {"storage": "1Gi"}}}
    assert cleaned["metadata"]["annotations"] == {
        "volume.beta.kubernetes.io/storage-class": "standard",
        "backup": "daily",
    }
    assert clean(claim, storage_class_map={"other": "x"})["spec"]["storageClassName"] == "fast"


def test_statefulset_claim_templates_and_ephemeral_volumes_mapped() -> None:
    statefulset = obj(
        "StatefulSet",
        "db",
        api="apps/v1",
        spec={
            "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"storageClassName": "fast"}},
                {"metadata": {"name": "logs"}, "spec": {"storageClassName": "slow"}},
                {"metadata": {"name": "default"}, "spec": {}},
            ],
            "template": {
                "spec": {
                    "volumes": [
                        {
                            "name": "scratch",
                            "ephemeral": {"volumeClaimTemplate": {"spec": {"storageClassName": "fast"}}},
                        },
                        {"name": "cfg", "configMap": {"name": "c"}},
                    ]
                }
            },
        },
    )
    cleaned = clean(statefulset, storage_class_map={"fast": "standard"})
    classes = [t["spec"].get("storageClassName") for t in cleaned["spec"]["volumeClaimTemplates"]]
    assert classes == ["standard", "slow", None]
    scratch = cleaned["spec"]["template"]["spec"]["volumes"][0]
    assert scratch["ephemeral"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "standard"


def test_cronjob_ephemeral_volume_mapped() -> None:
    volume = {"name": "s", "ephemeral": {"volumeClaimTemplate": {"spec": {"storageClassName": "fast"}}}}
    cronjob = obj(
        "CronJob",
        "n",
        api="batch/v1",
        spec={"jobTemplate": {"spec": {"template": {"spec": {"volumes": [volume]}}}}},
    )
    cleaned = clean(cronjob, storage_class_map={"fast": "standard"})
    mapped = cleaned["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"][0]
    assert mapped["ephemeral"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "standard"


def test_static_volume_keeps_its_claim_name_mapped() -> None:
    volume = obj(
        "PersistentVolume",
        "static",
        None,
        spec={
            "storageClassName": "fast",
            "claimRef": {
                "kind": "PersistentVolumeClaim",
                "namespace": "shop",
                "name": "data",
                "uid": "u",
                "resourceVersion": "9",
            },
        },
    )
    cleaned = clean(volume, namespace_map={"shop": "shop-copy"}, storage_class_map={"fast": "standard"})
    assert cleaned["spec"] == {
        "storageClassName": "standard",
        "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "shop-copy", "name": "data"},
    }


def test_job_selector_regenerated() -> None:
    job = obj(
        "Job",
        "once",
        api="batch/v1",
        spec={
            "manualSelector": False,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
            "template": {
                "metadata": {
                    "labels": {
                        "controller-uid": "u",
                        "batch.kubernetes.io/controller-uid": "u",
                        "job-name": "once",
                        "app": "x",
                    }
                },
                "spec": {"restartPolicy": "Never"},
            },
        },
    )
    cleaned = clean(job)
    assert "selector" not in cleaned["spec"] and "manualSelector" not in cleaned["spec"]
    assert cleaned["spec"]["template"]["metadata"]["labels"] == {"job-name": "once", "app": "x"}


def test_job_manual_selector_kept() -> None:
    job = obj(
        "Job",
        "manual",
        api="batch/v1",
        spec={
            "manualSelector": True,
            "selector": {"matchLabels": {"mine": "1"}},
            "template": {"metadata": {"labels": {"mine": "1"}}},
        },
    )
    assert clean(job)["spec"] == job["spec"]


def test_namespace_mapping() -> None:
    mapping = {"shop": "shop-copy"}
    assert clean(obj("ConfigMap", "c"), namespace_map=mapping)["metadata"]["namespace"] == "shop-copy"
    assert clean(obj("ConfigMap", "c", "other"), namespace_map=mapping)["metadata"]["namespace"] == "other"
    namespace = obj("Namespace", "shop", None)
    namespace["metadata"]["labels"] = {"kubernetes.io/metadata.name": "shop", "team": "a"}
    cleaned_namespace = clean(namespace, namespace_map=mapping)
    assert cleaned_namespace["metadata"]["name"] == "shop-copy"
    assert cleaned_namespace["metadata"]["labels"] == {"team": "a"}


def test_role_binding_subjects_mapped() -> None:
    subjects = [
        {"kind": "ServiceAccount", "name": "app", "namespace": "shop"},
        {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
        {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "Group", "name": "shop", "apiGroup": "rbac.authorization.k8s.io"},
    ]
    binding = obj(
        "RoleBinding",
        "b",
        api="rbac.authorization.k8s.io/v1",
        subjects=subjects,
        roleRef={"kind": "Role", "name": "r"},
    )
    cleaned = clean(binding, namespace_map={"shop": "shop-copy"})
    assert cleaned["metadata"]["namespace"] == "shop-copy"
    assert cleaned["subjects"] == [
        {"kind": "ServiceAccount", "name": "app", "namespace": "shop-copy"},
        {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
        subjects[2],
        subjects[3],
    ]
    cluster_binding = obj(
        "ClusterRoleBinding", "cb", None, api="rbac.authorization.k8s.io/v1", subjects=subjects[:1]
    )
    assert (
        clean(cluster_binding, namespace_map={"shop": "shop-copy"})["subjects"][0]["namespace"] == "shop-copy"
    )


def test_webhook_and_network_policy_references_mapped() -> None:
    webhook = obj(
        "ValidatingWebhookConfiguration",
        "v",
        None,
        api="admissionregistration.k8s.io/v1",
        webhooks=[{"name": "a", "clientConfig": {"service": {"namespace": "shop", "name": "hook"}}}],
    )
    cleaned = clean(webhook, namespace_map={"shop": "shop-copy"})
    assert cleaned["webhooks"][0]["clientConfig"]["service"]["namespace"] == "shop-copy"
    policy = obj(
        "NetworkPolicy",
        "p",
        api="networking.k8s.io/v1",
        spec={
            "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}}]}
            ],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/metadata.name",
                                        "operator": "In",
                                        "values": ["shop", "x"],
                                    }
                                ]
                            }
                        }
                    ]
                }
            ],
        },
    )
    mapped = clean(policy, namespace_map={"shop": "shop-copy"})["spec"]
    assert mapped["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "shop-copy"
    }
    assert mapped["egress"][0]["to"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "shop-copy",
        "x",
    ]


def test_service_account_token_secret_emptied_for_the_target() -> None:
    secret = obj(
        "Secret",
        "ci-token",
        type="kubernetes.io/service-account-token",
        data={"token": "dG9r", "ca.crt": "Y2E=", "namespace": "c2hvcA==", "extra": "eA=="},
    )
    secret["metadata"]["annotations"] = {
        "kubernetes.io/service-account.name": "ci",
        "kubernetes.io/service-account.uid": "old",
    }
    cleaned = clean(secret)
    assert cleaned["data"] == {"extra": "eA=="}
    assert cleaned["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "ci"}


def test_custom_resource_status_dropped_and_service_addresses_left() -> None:
    widget = obj("Widget", "w", api="example.com/v1", spec={"size": 3}, status={"ready": True})
    assert clean(widget) == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "shop"},
        "spec": {"size": 3},
    }
    service = obj(
        "Service", "web", spec={"clusterIP": "10.96.0.9", "ports": [{"port": 80, "nodePort": 30080}]}
    )
    assert clean(service)["spec"] == service["spec"]


def test_bootstrap_objects_of_every_cluster_are_left_out() -> None:
    admin = obj("ClusterRole", "admin", None, api="rbac.authorization.k8s.io/v1")
    admin["metadata"]["labels"] = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    assert skip_reason(admin)
    assert skip_reason(obj("PriorityClass", "system-node-critical", None, api="scheduling.k8s.io/v1"))
    assert skip_reason(obj("PriorityClass", "high", None, api="scheduling.k8s.io/v1")) is None
    schema = obj("FlowSchema", "exempt", None, api="flowcontrol.apiserver.k8s.io/v1")
    schema["metadata"]["annotations"] = {"apf.kubernetes.io/autoupdate-spec": "true"}
    assert skip_reason(schema)
    schema["metadata"]["annotations"] = {"apf.kubernetes.io/autoupdate-spec": "false"}
    assert skip_reason(schema) is None


def test_default_service_account_is_made_by_the_target() -> None:
    assert created_by_target(obj("ServiceAccount", "default"))
    assert created_by_target(obj("ServiceAccount", "app")) is None
    assert skip_reason(obj("ServiceAccount", "default")) is None
