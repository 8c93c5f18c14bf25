"""Selections: parsing and validation, kind patterns, namespace globs, the label selector grammar."""

from __future__ import annotations

from typing import Any

import pytest

from snapshots.selection import Selection, SelectionInvalid, parse_label_selector


def obj(kind: str, name: str, namespace: str | None = None, api: str = "v1", **labels: str) -> dict[str, Any]:
    """A minimal object as the API server returns it."""
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": api, "kind": kind, "metadata": metadata}


def test_default_keeps_everything() -> None:
    selection = Selection()
    assert selection.wants(obj("ConfigMap", "a", "shop"))
    assert selection.wants(obj("ClusterRole", "r", api="rbac.authorization.k8s.io/v1"))
    assert selection.list_label_selector() is None


def test_parse_round_trip() -> None:
    data = {
        "include_namespaces": ["shop", "team-*"],
        "exclude_namespaces": ["kube-*"],
        "include_kinds": ["ConfigMap", "apps/Deployment"],
        "exclude_kinds": ["Event"],
        "label_selector": "app=web,tier!=db",
        "cluster_scoped": False,
    }
    selection = Selection.parse(data)
    assert selection.to_dict() == data
    assert Selection.parse(selection.to_dict()) == selection


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"include_namespaces": ["Shop"]}, "include_namespaces[0]"),
        ({"include_namespaces": ["ok", "under_score"]}, "include_namespaces[1]"),
        ({"exclude_namespaces": ["-lead"]}, "exclude_namespaces[0]"),
        ({"exclude_namespaces": ["x" * 64]}, "exclude_namespaces[0]"),
        ({"include_namespaces": "shop"}, "include_namespaces"),
        ({"include_namespaces": [3]}, "include_namespaces[0]"),
        ({"include_kinds": ["apps/v1/Deployment/x"]}, "include_kinds[0]"),
        ({"include_kinds": ["config-map"]}, "include_kinds[0]"),
        ({"exclude_kinds": ["Bad_Group!/Kind"]}, "exclude_kinds[0]"),
        ({"include_kinds": ["apps/one/Deployment"]}, "include_kinds[0]"),
        ({"include_kinds": [""]}, "include_kinds[0]"),
        ({"label_selector": "app in (a,b"}, "label_selector"),
        ({"label_selector": "app=web,,tier=db"}, "label_selector"),
        ({"label_selector": "app=-bad"}, "label_selector"),
        ({"label_selector": "app in ()"}, "label_selector"),
        ({"label_selector": "count>3"}, "label_selector"),
        ({"label_selector": "Bad Prefix!/x=y"}, "label_selector"),
        ({"label_selector": 5}, "label_selector"),
        ({"cluster_scoped": "yes"}, "cluster_scoped"),
        ({"namespaces": ["shop"]}, "namespaces"),
    ],
)
def test_bad_selections_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(SelectionInvalid) as caught:
        Selection.parse(data)
    assert caught.value.field == field
    assert caught.value.fields == {field: [caught.value.reason]}
    assert caught.value.reason


def test_parse_allows_the_restore_keys_when_asked() -> None:
    selection = Selection.parse(
        {"namespace_map": {"a": "b"}, "existing": "skip"}, allow=("namespace_map", "existing")
    )
    assert selection == Selection()
    with pytest.raises(SelectionInvalid):
        Selection.parse({"existing": "skip"})


def test_namespace_globs_and_exclude_wins() -> None:
    selection = Selection(include_namespaces=("shop", "team-*"), exclude_namespaces=("team-old",))
    assert selection.wants_namespace("shop")
    assert selection.wants_namespace("team-a")
    assert not selection.wants_namespace("team-old")
    assert not selection.wants_namespace("shopping")
    assert Selection(exclude_namespaces=("kube-*",)).wants_namespace("default")
    assert not Selection(exclude_namespaces=("kube-*",)).wants_namespace("kube-system")
    assert Selection(include_namespaces=("team-[ab]",)).wants_namespace("team-b")
    assert not Selection(include_namespaces=("team-[ab]",)).wants_namespace("team-c")


def test_kind_patterns() -> None:
    by_kind = Selection(include_kinds=("event",))
    assert by_kind.wants_kind("", "v1", "Event")
    assert by_kind.wants_kind("events.k8s.io", "v1", "Event")
    assert not by_kind.wants_kind("", "v1", "ConfigMap")
    grouped = Selection(include_kinds=("apps/Deployment",))
    assert grouped.wants_kind("apps", "v1", "Deployment")
    assert not grouped.wants_kind("extensions", "v1beta1", "Deployment")
    core = Selection(include_kinds=("core/ConfigMap", "/Secret", "v1/Service"))
    assert core.wants_kind("", "v1", "ConfigMap")
    assert core.wants_kind("", "v1", "Secret")
    assert core.wants_kind("", "v1", "Service")
    assert not core.wants_kind("example.com", "v1", "Service")
    versioned = Selection(include_kinds=("apps/v1/Deployment", "core/v1/Pod"))
    assert versioned.wants_kind("apps", "v1", "Deployment")
    assert not versioned.wants_kind("apps", "v1beta2", "Deployment")
    assert versioned.wants_kind("", "v1", "Pod")
    excluded = Selection(exclude_kinds=("Event", "networking.k8s.io/Ingress"))
    assert not excluded.wants_kind("events.k8s.io", "v1", "Event")
    assert not excluded.wants_kind("networking.k8s.io", "v1", "Ingress")
    assert excluded.wants_kind("example.com", "v1", "Ingress")


def test_cluster_scoped_off_keeps_namespaces_only() -> None:
    selection = Selection(cluster_scoped=False)
    assert not selection.wants_resource("rbac.authorization.k8s.io", "v1", "ClusterRole", namespaced=False)
    assert selection.wants_resource("", "v1", "Namespace", namespaced=False)
    assert selection.wants_resource("", "v1", "ConfigMap", namespaced=True)
    assert not selection.wants(obj("ClusterRole", "r", api="rbac.authorization.k8s.io/v1"))
    assert selection.wants(obj("Namespace", "shop"))


def test_namespace_objects_follow_their_name_not_labels() -> None:
    selection = Selection(include_namespaces=("shop",), label_selector="app=web")
    assert selection.wants(obj("Namespace", "shop"))
    assert not selection.wants(obj("Namespace", "other", app="web"))
    assert selection.list_label_selector("", "Namespace") is None
    assert selection.list_label_selector("", "ConfigMap") == "app=web"


def test_wants_combines_namespace_kind_and_labels() -> None:
    selection = Selection(
        include_namespaces=("shop",), include_kinds=("ConfigMap",), label_selector="app=web"
    )
    assert selection.wants(obj("ConfigMap", "a", "shop", app="web"))
    assert not selection.wants(obj("ConfigMap", "a", "shop", app="db"))
    assert not selection.wants(obj("ConfigMap", "a", "other", app="web"))
    assert not selection.wants(obj("Secret", "a", "shop", app="web"))


def test_cluster_scoped_objects_still_filtered_by_labels() -> None:
    selection = Selection(include_namespaces=("shop",), label_selector="team=a")
    assert selection.wants(obj("ClusterRole", "r", api="rbac.authorization.k8s.io/v1", team="a"))
    assert not selection.wants(obj("ClusterRole", "r", api="rbac.authorization.k8s.io/v1"))


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app=web", {}, False),
        ("app!=web", {}, True),
        ("app!=web", {"app": "web"}, False),
        ("app!=web", {"app": "db"}, True),
        ("app in (web, db)", {"app": "db"}, True),
        ("app in (web,db)", {"app": "api"}, False),
        ("app in (web)", {}, False),
        ("app notin (web,db)", {}, True),
        ("app notin (web,db)", {"app": "web"}, False),
        ("app", {"app": ""}, True),
        ("app", {}, False),
        ("!app", {}, True),
        ("!app", {"app": "x"}, False),
        ("app=web,tier in (a,b),!debug", {"app": "web", "tier": "b"}, True),
        ("app=web,tier in (a,b),!debug", {"app": "web", "tier": "b", "debug": "1"}, False),
        ("example.com/team=a", {"example.com/team": "a"}, True),
        ("app=", {"app": ""}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selector_grammar(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert Selection(label_selector=selector).wants_labels(labels) is expected


def test_list_label_selector_is_canonical() -> None:
    selection = Selection(label_selector=" app == web , tier notin (b, a) , !debug,env ")
    assert selection.list_label_selector() == "app=web,tier notin (a,b),!debug,env"
    assert [r.op for r in parse_label_selector("a,b=c,d in (e)")] == ["exists", "=", "in"]


def test_explicitly_included_namespaces() -> None:
    assert Selection(include_namespaces=("kube-system",)).explicitly_includes("kube-system")
    assert Selection(include_namespaces=("kube-*",)).explicitly_includes("kube-public")
    assert not Selection(include_namespaces=("*",)).explicitly_includes("kube-system")
    assert not Selection(include_namespaces=("k*",)).explicitly_includes("kube-system")
    assert not Selection().explicitly_includes("kube-system")
    assert not Selection(
        include_namespaces=("kube-*",), exclude_namespaces=("kube-system",)
    ).explicitly_includes("kube-system")


def test_lists_become_tuples() -> None:
    selection = Selection(include_namespaces=["shop"], include_kinds=["ConfigMap"])  # type: ignore[arg-type]
    assert selection.include_namespaces == ("shop",)
    assert selection == Selection(include_namespaces=("shop",), include_kinds=("ConfigMap",))
    assert hash(selection) == hash(Selection(include_namespaces=("shop",), include_kinds=("ConfigMap",)))
