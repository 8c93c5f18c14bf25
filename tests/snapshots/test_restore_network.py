"""Services' clusterIPs and nodePorts: kept where free in the target, reassigned and noted otherwise."""

from __future__ import annotations

from typing import Any

from snapshots.restore.network import Taken, service_ips, without_ips


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    """A Service in shop with the given spec."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


def test_free_addresses_kept_and_marked_taken() -> None:
    taken = Taken()
    source = service(
        type="NodePort",
        clusterIP="10.96.0.23",
        clusterIPs=["10.96.0.23"],
        ports=[{"port": 80, "nodePort": 30080}],
    )
    kept, notes = service_ips(source, taken)
    assert kept == source and notes == []
    assert taken.cluster_ips == {"10.96.0.23"} and taken.node_ports == {30080}
    # The same addresses a second time now clash: a batch cannot hand one out twice.
    again, notes = service_ips(source, taken)
    assert "clusterIP" not in again["spec"] and "clusterIPs" not in again["spec"]
    assert "nodePort" not in again["spec"]["ports"][0]
    assert len(notes) == 2


def test_taken_cluster_ip_reassigned_with_a_note() -> None:
    taken = Taken(cluster_ips={"10.96.0.23"})
    reassigned, notes = service_ips(
        service(clusterIP="10.96.0.23", clusterIPs=["10.96.0.23"], ports=[{"port": 80}]), taken
    )
    assert reassigned["spec"] == {"ports": [{"port": 80}]}
    assert notes == [
        "clusterIP 10.96.0.23 of Service shop/web is taken in the target: a new one was assigned"
    ]


def test_node_ports_one_by_one() -> None:
    taken = Taken(node_ports={30081})
    source = service(
        type="LoadBalancer",
        clusterIP="10.96.0.5",
        ports=[{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30081}],
        externalTrafficPolicy="Local",
        healthCheckNodePort=30082,
    )
    result, notes = service_ips(source, taken)
    assert result["spec"]["ports"] == [
        {"name": "a", "port": 80, "nodePort": 30080},
        {"name": "b", "port": 81},
    ]
    assert result["spec"]["clusterIP"] == "10.96.0.5"
    assert result["spec"]["healthCheckNodePort"] == 30082
    assert notes == ["nodePort 30081 of Service shop/web is taken in the target: a new one was assigned"]


def test_health_check_node_port_clash() -> None:
    result, notes = service_ips(
        service(type="LoadBalancer", healthCheckNodePort=30082, ports=[]), Taken(node_ports={30082})
    )
    assert "healthCheckNodePort" not in result["spec"]
    assert "healthCheckNodePort 30082" in notes[0]


def test_headless_always_kept() -> None:
    taken = Taken(cluster_ips={"None"})
    source = service(clusterIP="None", clusterIPs=["None"], ports=[{"port": 5432}])
    assert service_ips(source, taken) == (source, [])
    assert without_ips(source) == source


def test_external_name_has_no_ip() -> None:
    result, notes = service_ips(
        service(type="ExternalName", externalName="db.example.com", clusterIP=""), Taken()
    )
    assert result["spec"] == {"type": "ExternalName", "externalName": "db.example.com"}
    assert notes == []


def test_dual_stack_secondary_clash_keeps_the_primary() -> None:
    taken = Taken(cluster_ips={"fd00::5"})
    source = service(
        clusterIP="10.96.0.5", clusterIPs=["10.96.0.5", "fd00::5"], ipFamilyPolicy="RequireDualStack"
    )
    result, notes = service_ips(source, taken)
    assert result["spec"]["clusterIP"] == "10.96.0.5"
    assert result["spec"]["clusterIPs"] == ["10.96.0.5"]
    assert "fd00::5" in notes[0]


def test_keep_false_and_without_ips() -> None:
    source = service(
        type="NodePort",
        clusterIP="10.96.0.23",
        clusterIPs=["10.96.0.23"],
        ports=[{"port": 80, "nodePort": 30080}],
        healthCheckNodePort=1,
    )
    stripped = {"type": "NodePort", "ports": [{"port": 80}]}
    assert without_ips(source)["spec"] == stripped
    assert service_ips(source, Taken(), keep=False) == ({**source, "spec": stripped}, [])
    assert source["spec"]["clusterIP"] == "10.96.0.23"


def test_other_kinds_unchanged() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "spec": {"clusterIP": "x"}}
    assert service_ips(config, Taken(cluster_ips={"x"})) == (config, [])
    assert without_ips(config) == config


def test_taken_from_the_targets_services() -> None:
    live = [
        service(
            "a",
            clusterIP="10.96.0.1",
            clusterIPs=["10.96.0.1", "fd00::1"],
            ports=[{"port": 1, "nodePort": 30001}],
        ),
        service("b", clusterIP="None", ports=[{"port": 2}]),
        service("c", type="LoadBalancer", clusterIP="10.96.0.3", healthCheckNodePort=30003, ports=[]),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "d"}},
    ]
    taken = Taken.from_services(live)
    assert taken.cluster_ips == {"10.96.0.1", "fd00::1", "10.96.0.3"}
    assert taken.node_ports == {30001, 30003}
