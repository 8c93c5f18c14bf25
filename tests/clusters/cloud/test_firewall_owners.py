"""The cluster firewall's rules are an input others add to: each owner's rules are reconciled on
their own, and a rule Flotilla did not make survives every pass.

The providers are the HTTP-level fakes of the other cloud tests (libcloud's real drivers against
`responses`) and moto for EC2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from clusters.models import Cluster
from clusters.providers.capabilities import register_firewall_contributor, unregister_firewall_contributor
from clusters.providers.cloud import cluster_tag
from clusters.providers.clouds import FirewallRule
from tests.clusters.cloud.conftest import Ec2Account
from tests.clusters.cloud.fake_context import FakeContext, drive, make_cluster, make_pool
from tests.clusters.cloud.test_address_firewalls import FakeLinode, FakeVultr, cloud_of
from tests.clusters.cloud.test_azure import FakeAzure, azure_driver
from tests.clusters.cloud.test_http_providers import FakeDigitalOcean

OFFICE = "198.51.100.7/32"
WEB = FirewallRule("tcp", 8080, 8080, cidrs=("192.0.2.0/24",), owner="networking:7")


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def contributed() -> Iterator[list[FirewallRule]]:
    """Rules the networking app contributes to every cluster (edit the list to change them)."""
    rules: list[FirewallRule] = []
    contributor: Callable[[Cluster], list[FirewallRule]] = lambda cluster: list(rules)  # noqa: E731
    register_firewall_contributor("networking", contributor)
    try:
        yield rules
    finally:
        unregister_firewall_contributor("networking")


def add_foreign_rule(fake: Any) -> None:
    """A rule someone added at the provider by hand (SSH from an office address)."""
    if isinstance(fake, FakeLinode):
        [firewall] = fake.firewalls.values()
        firewall["rules"]["inbound"].append(
            {
                "label": "office-ssh",
                "action": "ACCEPT",
                "protocol": "TCP",
                "ports": "22",
                "addresses": {"ipv4": [OFFICE]},
            }
        )
    else:
        [group_id] = fake.groups
        fake.rules[group_id].append(
            {
                "id": 999,
                "type": "v4",
                "ip_type": "v4",
                "action": "accept",
                "protocol": "tcp",
                "port": "22",
                "subnet": OFFICE.split("/")[0],
                "subnet_size": 32,
                "source": "",
                "notes": "ops: office ssh",
            }
        )


@pytest.mark.parametrize("kind", ["linode", "vultr"])
def test_a_rule_added_by_someone_else_survives_reconcile_and_scaling(
    http: responses.RequestsMock, kind: str
) -> None:
    fake, region, size = cloud_of(kind, http)
    driver = fake.driver()
    pools = [make_pool("general", size, 2)]
    ctx = FakeContext(make_cluster("jobs", region=region), pools)
    drive(driver, ctx)
    add_foreign_rule(fake)

    pools[0].count = 3
    drive(driver, ctx)
    drive(fake.driver(api_cidrs="192.0.2.0/24"), ctx)

    admitted = fake.admitted()
    assert admitted[("tcp", "22")] == {OFFICE}
    members = {f"{a}/32" for a in fake.vm_addresses().values()}
    assert len(members) == 3
    assert admitted[("udp", "8472")] == members
    assert admitted[("tcp", "6443")] == {"192.0.2.0/24"} | members


@pytest.mark.parametrize("kind", ["linode", "vultr"])
def test_contributed_rules_come_and_go_without_touching_other_rules(
    http: responses.RequestsMock, kind: str, contributed: list[FirewallRule]
) -> None:
    fake, region, size = cloud_of(kind, http)
    driver = fake.driver()
    ctx = FakeContext(make_cluster("jobs", region=region), [make_pool("general", size, 2)])
    drive(driver, ctx)
    add_foreign_rule(fake)
    cluster_rules = {k: v for k, v in fake.admitted().items() if k != ("tcp", "22")}

    contributed.append(WEB)
    outcomes = drive(driver, ctx)

    assert any(o.message == "Firewall flotilla-jobs-0a1b2c3d rules updated" for o in outcomes)
    assert fake.admitted() == cluster_rules | {("tcp", "22"): {OFFICE}, ("tcp", "8080"): {"192.0.2.0/24"}}
    [record] = ctx.resources("firewall")
    assert record.data == {"owners": ["cluster", "networking:7"]}
    writes = list(fake.firewall_writes)
    assert drive(driver, ctx)[-1].done and fake.firewall_writes == writes  # nothing to change: reads only

    contributed.clear()
    drive(driver, ctx)

    assert fake.admitted() == cluster_rules | {("tcp", "22"): {OFFICE}}
    assert record.data == {"owners": ["cluster"]}


def test_digitalocean_keeps_rules_it_did_not_make(
    http: responses.RequestsMock, contributed: list[FirewallRule]
) -> None:
    fake = FakeDigitalOcean(http)
    driver = fake_do_driver()
    ctx = FakeContext(make_cluster("jobs", region="ams3"), [make_pool("general", "s-2vcpu-4gb", 1)])
    drive(driver, ctx)
    [firewall] = fake.firewalls.values()
    firewall["inbound_rules"].append({"protocol": "tcp", "ports": "22", "sources": {"addresses": [OFFICE]}})

    contributed.append(WEB)
    drive(driver, ctx)

    assert fake.admitted("tcp", "22")["addresses"] == {OFFICE}
    assert fake.admitted("tcp", "8080")["addresses"] == {"192.0.2.0/24"}
    assert fake.admitted("udp", "8472")["tags"] == {cluster_tag(ctx.cluster.external_name)}


def fake_do_driver() -> Any:
    from clusters.providers.cloud import DigitalOceanDriver

    return DigitalOceanDriver({"token": "good"}, {})


def test_azure_keeps_rules_it_did_not_make_and_follows_api_cidrs(
    http: responses.RequestsMock, contributed: list[FirewallRule]
) -> None:
    fake = FakeAzure(http)
    ctx = FakeContext(make_cluster("shop", region="westeurope"), [make_pool("general", "Standard_B2s", 1)])
    drive(azure_driver(), ctx)
    [nsg] = fake.nsgs.values()
    office = {
        "name": "office-ssh",
        "properties": {
            "priority": 110,  # where the cluster's second rule would go: Flotilla picks another
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "destinationPortRange": "22",
            "sourceAddressPrefix": OFFICE,
            "destinationAddressPrefix": "*",
        },
    }
    nsg["properties"]["securityRules"].append(office)

    contributed.append(WEB)
    drive(azure_driver(api_cidrs="192.0.2.0/24"), ctx)

    [nsg] = fake.nsgs.values()
    rules = {r["name"]: r["properties"] for r in nsg["properties"]["securityRules"]}
    assert rules["office-ssh"] == office["properties"]
    assert rules["addresses-tcp-6443"]["sourceAddressPrefixes"] == ["192.0.2.0/24"]
    assert rules["flotilla-networking-7-0"]["sourceAddressPrefixes"] == ["192.0.2.0/24"]
    assert rules["flotilla-networking-7-0"]["destinationPortRange"] == "8080"
    priorities = [p["priority"] for p in rules.values()]
    assert len(priorities) == len(set(priorities))

    contributed.clear()
    drive(azure_driver(api_cidrs="192.0.2.0/24"), ctx)

    [nsg] = fake.nsgs.values()
    names = {r["name"] for r in nsg["properties"]["securityRules"]}
    assert "office-ssh" in names and not any(n.startswith("flotilla-networking") for n in names)


def test_ec2_keeps_rules_it_did_not_make(ec2: Ec2Account, contributed: list[FirewallRule]) -> None:
    driver = ec2.driver()
    ctx = FakeContext(make_cluster("web"), [make_pool("general", "t3.small", 1)])
    drive(driver, ctx)
    [record] = ctx.resources("firewall")
    client = ec2.emulator.ec2()
    client.authorize_security_group_ingress(
        GroupId=record.provider_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": OFFICE}]}],
    )

    contributed.append(WEB)
    drive(driver, ctx)

    [group] = client.describe_security_groups(GroupIds=[record.provider_id])["SecurityGroups"]
    admitted = {
        (p["IpProtocol"], p["FromPort"]): {r["CidrIp"] for r in p.get("IpRanges", [])}
        for p in group["IpPermissions"]
    }
    assert admitted[("tcp", 22)] == {OFFICE}
    assert admitted[("tcp", 8080)] == {"192.0.2.0/24"}


def test_a_contributed_rule_must_name_its_owner_and_networks(
    http: responses.RequestsMock, contributed: list[FirewallRule]
) -> None:
    fake = FakeLinode(http)
    ctx = FakeContext(make_cluster("jobs", region="eu-west"), [make_pool("general", "g6-standard-2", 1)])
    contributed.append(FirewallRule("tcp", 8080, 8080, cidrs=("192.0.2.0/24",), owner="cluster"))

    with pytest.raises(Exception, match="owner 'cluster' is not networking:<id>"):
        drive(fake.driver(), ctx)

    contributed[:] = [FirewallRule("tcp", 22, 22, members=True, owner="networking:1")]
    with pytest.raises(Exception, match="admits networks"):
        drive(fake.driver(), ctx)


def test_vultr_rule_someone_else_already_has_is_not_added_twice(
    http: responses.RequestsMock, contributed: list[FirewallRule]
) -> None:
    """Vultr refuses two rules admitting the same: the existing one serves, and stays theirs."""
    fake = FakeVultr(http)
    ctx = FakeContext(make_cluster("jobs", region="ams"), [make_pool("general", "vc2-2c-4gb", 1)])
    drive(fake.driver(), ctx)
    add_foreign_rule(fake)

    contributed.append(FirewallRule("tcp", 22, 22, cidrs=(OFFICE,), owner="networking:3"))
    drive(fake.driver(), ctx)
    contributed.clear()
    drive(fake.driver(), ctx)

    [group_id] = fake.groups
    [ssh] = [r for r in fake.rules[group_id] if r["port"] == "22"]
    assert ssh["notes"] == "ops: office ssh"


@pytest.mark.parametrize("kind", ["linode", "vultr"])
def test_rules_written_before_rules_had_owners_are_the_clusters(
    http: responses.RequestsMock, kind: str
) -> None:
    """A firewall made by the earlier code (no owner in descriptions, `flotilla: API` notes) is
    taken as the cluster's: nothing is rewritten, and a scale-down still removes a gone member."""
    fake, region, size = cloud_of(kind, http)
    pools = [make_pool("general", size, 2)]
    ctx = FakeContext(make_cluster("jobs", region=region), pools)
    drive(fake.driver(), ctx)
    if isinstance(fake, FakeLinode):
        [firewall] = fake.firewalls.values()
        for rule in firewall["rules"]["inbound"]:
            del rule["description"]
    else:
        assert isinstance(fake, FakeVultr)
        [group_id] = fake.groups
        for rule in fake.rules[group_id]:
            rule["notes"] = (
                rule["notes"]
                .replace("flotilla:cluster API", "flotilla: API")
                .replace("flotilla:cluster member", "flotilla: member")
            )
    writes = list(fake.firewall_writes)

    assert drive(fake.driver(), ctx)[-1].done and fake.firewall_writes == writes

    pools[0].count = 1
    drive(fake.driver(), ctx)

    [member] = fake.vm_addresses().values()
    assert fake.admitted()[("udp", "8472")] == {f"{member}/32"}
