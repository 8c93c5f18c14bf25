"""Linode and Vultr clusters behind firewalls that admit the cluster's members by address.

libcloud's real drivers and the adapters' own firewall requests run against in-memory fakes of the
endpoints they call (`responses`), answering in each provider's JSON shape with just the fields
libcloud and the adapters read. Each fake refuses what its provider documents as invalid (Linode
labels and rule fields, Vultr rule fields and port ranges), so the tests fail where the provider
would, and what Flotilla should never send (rules without addresses, duplicate rules).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest
import responses
import yaml

from clusters.choices import ResourceState
from clusters.exceptions import ProviderError
from clusters.providers.base import ProviderDriver
from clusters.providers.cloud import LinodeDriver, VultrDriver, cluster_tag
from tests.clusters.cloud.fake_context import FakeContext, WorkerKilled, drive, make_cluster, make_pool

Answer = tuple[int, dict[str, str], str]
QUERY = r"(\?.*)?$"
K3S_MEMBER_PORTS = {("tcp", "6443"), ("tcp", "10250"), ("udp", "8472"), ("udp", "51820-51821")}


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Every HTTP request of the test must be answered by a registered fake."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def body_of(request: Any) -> dict[str, Any]:
    return dict(json.loads(request.body))


def path_of(request: Any) -> str:
    return str(urlsplit(request.url).path)


class FakeCloud(Protocol):
    """What the shared tests ask of a provider's fake."""

    created: list[dict[str, Any]]  # VM creation requests as sent
    firewall_writes: list[str]  # requests that change a firewall ("METHOD path")

    def driver(self, **settings: Any) -> ProviderDriver: ...

    def vm_addresses(self) -> dict[str, str]:
        """Each VM's name and the address its peers reach it at (its private one)."""
        ...

    def firewall_ids(self) -> list[str]: ...

    def admitted(self) -> dict[tuple[str, str], set[str]]:
        """(protocol, "low[-high]") -> the networks admitted there, over every firewall."""
        ...

    def behind(self) -> dict[str, set[str]]:
        """Each VM's name and the firewalls it is behind."""
        ...

    def take_out(self, vm_name: str) -> None:
        """Take a VM out of its firewall, as someone might by hand."""
        ...


# --- Linode --------------------------------------------------------------------------------------

LINODE = "https://api.linode.com/v4"
LINODE_LABEL = re.compile(r"^[a-zA-Z]((?!--|__|\.\.)[a-zA-Z0-9-_.])+$")


def linode_error(status: int, reason: str, field: str | None = None) -> Answer:
    error = {"reason": reason} | ({"field": field} if field else {})
    return status, {}, json.dumps({"errors": [error]})


def linode_page(data: list[dict[str, Any]]) -> Answer:
    return 200, {}, json.dumps({"data": data, "page": 1, "pages": 1, "results": len(data)})


class FakeLinode:
    """Linodes and Cloud Firewalls kept in memory.

    Linodes are created "provisioning" and listed "running" with a public and a private address.
    A firewall holds its rules and its devices; deleting a Linode removes it from its firewalls.
    """

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.instances: dict[int, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.firewalls: dict[int, dict[str, Any]] = {}
        self.devices: dict[int, list[dict[str, Any]]] = {}
        self.firewall_writes: list[str] = []
        self.log: list[str] = []  # every request but listings, in order ("METHOD path")
        # Answer the next device assignments with a server error (the Linode is made, not assigned).
        self.failing_assignments = 0
        mock.add_callback("GET", f"{LINODE}/linode/instances", callback=self.list_linodes)
        mock.add_callback("POST", f"{LINODE}/linode/instances", callback=self.create_linode)
        mock.add_callback("DELETE", re.compile(rf"{LINODE}/linode/instances/\d+{QUERY}"), self.delete_linode)
        firewalls = f"{LINODE}/networking/firewalls"
        mock.add_callback("GET", re.compile(rf"{firewalls}{QUERY}"), callback=self.list_firewalls)
        mock.add_callback("POST", re.compile(rf"{firewalls}{QUERY}"), callback=self.create_firewall)
        mock.add_callback("DELETE", re.compile(rf"{firewalls}/\d+{QUERY}"), callback=self.delete_firewall)
        mock.add_callback("GET", re.compile(rf"{firewalls}/\d+/rules{QUERY}"), callback=self.get_rules)
        mock.add_callback("PUT", re.compile(rf"{firewalls}/\d+/rules{QUERY}"), callback=self.put_rules)
        mock.add_callback("GET", re.compile(rf"{firewalls}/\d+/devices{QUERY}"), callback=self.list_devices)
        mock.add_callback("POST", re.compile(rf"{firewalls}/\d+/devices{QUERY}"), callback=self.add_device)

    def driver(self, **settings: Any) -> ProviderDriver:
        return LinodeDriver({"token": "good"}, settings)

    # Linodes

    def list_linodes(self, request: Any) -> Answer:
        return linode_page([dict(linode, status="running") for linode in self.instances.values()])

    def create_linode(self, request: Any) -> Answer:
        body = body_of(request)
        self.created.append(body)
        number = len(self.created)
        self.log.append(f"POST linode {5000 + number}")
        linode = {
            "id": 5000 + number,
            "label": body["label"],
            "status": "provisioning",
            "ipv4": [f"198.51.100.{number}", f"192.168.130.{number}"],
            "ipv6": "2001:db8::1/128",
            "region": body["region"],
            "type": body["type"],
            "image": body["image"],
            "created": "2026-11-25T10:00:00",
            "tags": body.get("tags", []),
            "hypervisor": "kvm",
            "specs": {},
            "alerts": {},
            "backups": {},
            "watchdog_enabled": True,
        }
        self.instances[linode["id"]] = linode
        return 200, {}, json.dumps(linode)

    def delete_linode(self, request: Any) -> Answer:
        linode_id = int(path_of(request).rsplit("/", 1)[1])
        self.instances.pop(linode_id)
        for devices in self.devices.values():
            devices[:] = [d for d in devices if d["entity"]["id"] != linode_id]
        return 200, {}, "{}"

    # Firewalls

    def firewall_of(self, request: Any) -> dict[str, Any] | None:
        return self.firewalls.get(int(path_of(request).split("/firewalls/")[1].split("/")[0]))

    def list_firewalls(self, request: Any) -> Answer:
        return linode_page(list(self.firewalls.values()))

    def invalid_rules(self, rules: dict[str, Any]) -> Answer | None:
        """Linode's refusals of a rule set, as its API documents them."""
        if rules.get("inbound_policy") not in ("ACCEPT", "DROP"):
            return linode_error(400, "Must be ACCEPT or DROP", "rules.inbound_policy")
        if rules.get("outbound_policy") not in ("ACCEPT", "DROP"):
            return linode_error(400, "Must be ACCEPT or DROP", "rules.outbound_policy")
        every = list(rules.get("inbound") or []) + list(rules.get("outbound") or [])
        if len(every) > 25:
            return linode_error(400, "A firewall may have up to 25 rules", "rules")
        for rule in every:
            if rule.get("protocol") not in ("TCP", "UDP", "ICMP", "IPENCAP"):
                return linode_error(400, "Invalid protocol", "rules.protocol")
            if rule.get("action") not in ("ACCEPT", "DROP"):
                return linode_error(400, "Invalid action", "rules.action")
            if not re.fullmatch(r"\d+(-\d+)?(, ?\d+(-\d+)?)*", str(rule.get("ports", ""))):
                return linode_error(400, "Invalid ports", "rules.ports")
            label = str(rule.get("label", "abc"))
            if not 3 <= len(label) <= 32 or not LINODE_LABEL.match(label):
                return linode_error(400, "Invalid label", "rules.label")
            ipv4 = (rule.get("addresses") or {}).get("ipv4") or []
            if not ipv4:
                return linode_error(400, "Must contain at least one address", "rules.addresses")
            for network in ipv4:
                try:
                    ipaddress.IPv4Network(network)
                except ValueError:
                    return linode_error(400, f"Invalid IPv4 address or range: {network}", "rules.addresses")
        return None

    def create_firewall(self, request: Any) -> Answer:
        body = body_of(request)
        self.firewall_writes.append(f"POST {path_of(request)}")
        label = str(body.get("label", ""))
        if not 3 <= len(label) <= 32 or not LINODE_LABEL.match(label) or not label[-1].isalnum():
            return linode_error(400, "Label must be 3-32 characters of a-z, 0-9, -, _ and .", "label")
        if any(f["label"] == label for f in self.firewalls.values()):
            return linode_error(400, "Label must be unique among your Cloud Firewalls", "label")
        refusal = self.invalid_rules(body.get("rules") or {})
        if refusal:
            return refusal
        firewall_id = 700 + len(self.firewalls) + 1
        self.firewalls[firewall_id] = {
            "id": firewall_id,
            "label": label,
            "rules": body["rules"],
            "status": "enabled",
            "tags": body.get("tags", []),
            "created": "2026-11-25T10:00:00",
            "updated": "2026-11-25T10:00:00",
        }
        self.devices[firewall_id] = []
        return 200, {}, json.dumps(self.firewalls[firewall_id])

    def delete_firewall(self, request: Any) -> Answer:
        self.firewall_writes.append(f"DELETE {path_of(request)}")
        firewall = self.firewall_of(request)
        if firewall is None:
            return linode_error(404, "Not found")
        del self.firewalls[firewall["id"]], self.devices[firewall["id"]]
        return 200, {}, "{}"

    def get_rules(self, request: Any) -> Answer:
        firewall = self.firewall_of(request)
        if firewall is None:
            return linode_error(404, "Not found")
        return 200, {}, json.dumps(firewall["rules"] | {"version": 1, "fingerprint": "abc"})

    def put_rules(self, request: Any) -> Answer:
        self.firewall_writes.append(f"PUT {path_of(request)}")
        firewall = self.firewall_of(request)
        if firewall is None:
            return linode_error(404, "Not found")
        rules = body_of(request)
        refusal = self.invalid_rules(rules)
        if refusal:
            return refusal
        firewall["rules"] = rules
        return 200, {}, json.dumps(rules)

    def list_devices(self, request: Any) -> Answer:
        firewall = self.firewall_of(request)
        if firewall is None:
            return linode_error(404, "Not found")
        return linode_page(self.devices[firewall["id"]])

    def add_device(self, request: Any) -> Answer:
        self.firewall_writes.append(f"POST {path_of(request)}")
        firewall = self.firewall_of(request)
        if firewall is None:
            return linode_error(404, "Not found")
        if self.failing_assignments:
            self.failing_assignments -= 1
            return linode_error(500, "Please try again")
        body = body_of(request)
        self.log.append(f"POST device {body.get('id')}")
        if body.get("type") != "linode" or body.get("id") not in self.instances:
            return linode_error(400, "Not found", "id")
        if any(d["entity"]["id"] == body["id"] for d in self.devices[firewall["id"]]):
            return linode_error(400, "This Linode is already assigned to this firewall")
        entity = {"id": body["id"], "type": "linode", "label": self.instances[body["id"]]["label"]}
        device = {"id": 9000 + sum(map(len, self.devices.values())), "entity": entity}
        self.devices[firewall["id"]].append(device)
        return 200, {}, json.dumps(device)

    # What the shared tests read

    def vm_addresses(self) -> dict[str, str]:
        return {linode["label"]: linode["ipv4"][1] for linode in self.instances.values()}

    def firewall_ids(self) -> list[str]:
        return [str(firewall_id) for firewall_id in self.firewalls]

    def admitted(self) -> dict[tuple[str, str], set[str]]:
        found: dict[tuple[str, str], set[str]] = {}
        for firewall in self.firewalls.values():
            rules = firewall["rules"]
            # Everything not admitted is dropped; outbound stays open.
            assert (rules["inbound_policy"], rules["outbound_policy"], rules["outbound"]) == (
                "DROP",
                "ACCEPT",
                [],
            )
            for rule in rules["inbound"]:
                assert rule["action"] == "ACCEPT"
                key = (rule["protocol"].lower(), rule["ports"])
                found.setdefault(key, set()).update(rule["addresses"]["ipv4"])
        return found

    def behind(self) -> dict[str, set[str]]:
        held = {linode["label"]: set[str]() for linode in self.instances.values()}
        for firewall_id, devices in self.devices.items():
            for device in devices:
                held[self.instances[device["entity"]["id"]]["label"]].add(str(firewall_id))
        return held

    def take_out(self, vm_name: str) -> None:
        for devices in self.devices.values():
            devices[:] = [d for d in devices if d["entity"]["label"] != vm_name]


# --- Vultr ---------------------------------------------------------------------------------------

VULTR = "https://api.vultr.com/v2"
NO_MORE = {"total": 1, "links": {"next": "", "prev": ""}}
VULTR_PORT = re.compile(r"\d+(:\d+)?")


def vultr_error(status: int, message: str) -> Answer:
    return status, {}, json.dumps({"error": message, "status": status})


class FakeVultr:
    """Vultr instances and firewall groups kept in memory.

    Instances are created "pending" and listed "active" with a public and a private address. A
    group's rules are one network and one port (or `low:high` range) each; a group that instances
    use cannot be deleted, and its count may lag behind the instances' deletion.
    """

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.instances: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.groups: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, list[dict[str, Any]]] = {}
        self.firewall_writes: list[str] = []
        self.rule_numbers = 0
        # Count this many instances more in the next group listings (deleted ones Vultr still counts).
        self.lagging_counts = 0
        # Refuse the next group deletions as "in use".
        self.in_use_refusals = 0
        self.refused = 0
        instance = re.compile(rf"{VULTR}/instances/[\w-]+{QUERY}")
        mock.add_callback("GET", re.compile(rf"{VULTR}/instances{QUERY}"), callback=self.list_instances)
        mock.add_callback("POST", re.compile(rf"{VULTR}/instances{QUERY}"), callback=self.create_instance)
        mock.add_callback("PATCH", instance, callback=self.update_instance)
        mock.add_callback("DELETE", instance, callback=self.delete_instance)
        firewalls = f"{VULTR}/firewalls"
        mock.add_callback("GET", re.compile(rf"{firewalls}{QUERY}"), callback=self.list_groups)
        mock.add_callback("POST", re.compile(rf"{firewalls}{QUERY}"), callback=self.create_group)
        mock.add_callback("DELETE", re.compile(rf"{firewalls}/[\w-]+{QUERY}"), callback=self.delete_group)
        rules = re.compile(rf"{firewalls}/[\w-]+/rules{QUERY}")
        mock.add_callback("GET", rules, callback=self.list_rules)
        mock.add_callback("POST", rules, callback=self.add_rule)
        mock.add_callback("DELETE", re.compile(rf"{firewalls}/[\w-]+/rules/\d+{QUERY}"), self.delete_rule)

    def driver(self, **settings: Any) -> ProviderDriver:
        return VultrDriver({"token": "good"}, {"image": "2284"} | settings)

    # Instances

    def list_instances(self, request: Any) -> Answer:
        listed = [dict(i, status="active", power_status="running") for i in self.instances.values()]
        return 200, {}, json.dumps({"instances": listed, "meta": NO_MORE})

    def create_instance(self, request: Any) -> Answer:
        body = body_of(request)
        self.created.append(body)
        group = body.get("firewall_group_id", "")
        if group and group not in self.groups:
            return vultr_error(400, "Invalid firewall group")
        number = len(self.created)
        instance = {
            "id": f"cb676a46-66fd-4dfb-b839-4431413800{number:02d}",
            "label": body["label"],
            "main_ip": f"203.0.113.{number}",
            "v6_main_ip": "",
            "internal_ip": f"10.1.96.{number}",
            "plan": body["plan"],
            "os_id": int(body.get("os_id", 2284)),
            "date_created": "2026-11-25T10:00:00+00:00",
            "region": body["region"],
            "ram": 4096,
            "disk": 80,
            "netmask_v4": "255.255.254.0",
            "gateway_v4": "203.0.113.254",
            "v6_network": "",
            "v6_network_size": 0,
            "app_id": 0,
            "image_id": "",
            "features": [],
            "tag": body.get("tag", ""),
            "os": "Ubuntu 24.04 LTS x64",
            "status": "pending",
            "power_status": "stopped",
            "server_status": "none",
            "vcpu_count": 2,
            "allowed_bandwidth": 3,
            "firewall_group_id": group,
        }
        self.instances[instance["id"]] = instance
        return 202, {}, json.dumps({"instance": instance})

    def update_instance(self, request: Any) -> Answer:
        self.firewall_writes.append(f"PATCH {path_of(request)}")
        instance = self.instances.get(path_of(request).rsplit("/", 1)[1])
        if instance is None:
            return vultr_error(404, "Invalid instance ID")
        group = body_of(request).get("firewall_group_id", instance["firewall_group_id"])
        if group and group not in self.groups:
            return vultr_error(400, "Invalid firewall group")
        instance["firewall_group_id"] = group
        return 202, {}, json.dumps({"instance": instance})

    def delete_instance(self, request: Any) -> Answer:
        self.instances.pop(path_of(request).rsplit("/", 1)[1])
        return 204, {}, ""

    # Firewall groups

    def group_of(self, request: Any) -> str:
        return path_of(request).split("/firewalls/")[1].split("/")[0]

    def list_groups(self, request: Any) -> Answer:
        listed = []
        for group_id, group in self.groups.items():
            count = sum(1 for i in self.instances.values() if i["firewall_group_id"] == group_id)
            rules = len(self.rules[group_id])
            listed.append(group | {"instance_count": count + self.lagging_counts, "rule_count": rules})
        self.lagging_counts = max(0, self.lagging_counts - 1)
        return 200, {}, json.dumps({"firewall_groups": listed, "meta": NO_MORE})

    def create_group(self, request: Any) -> Answer:
        self.firewall_writes.append(f"POST {path_of(request)}")
        group_id = f"1234abcd-0000-4000-8000-00000000000{len(self.groups) + 1}"
        self.groups[group_id] = {
            "id": group_id,
            "description": body_of(request).get("description", ""),
            "date_created": "2026-11-25T10:00:00+00:00",
            "date_modified": "2026-11-25T10:00:00+00:00",
            "instance_count": 0,
            "rule_count": 0,
            "max_rule_count": 50,
        }
        self.rules[group_id] = []
        return 201, {}, json.dumps({"firewall_group": self.groups[group_id]})

    def delete_group(self, request: Any) -> Answer:
        self.firewall_writes.append(f"DELETE {path_of(request)}")
        group_id = self.group_of(request)
        if group_id not in self.groups:
            return vultr_error(404, "Invalid firewall group")
        in_use = any(i["firewall_group_id"] == group_id for i in self.instances.values())
        if in_use or self.in_use_refusals:
            self.in_use_refusals = max(0, self.in_use_refusals - 1)
            self.refused += 1
            return vultr_error(400, "Unable to delete firewall group: it is in use by instances")
        del self.groups[group_id], self.rules[group_id]
        return 204, {}, ""

    def list_rules(self, request: Any) -> Answer:
        group_id = self.group_of(request)
        if group_id not in self.groups:
            return vultr_error(404, "Invalid firewall group")
        return 200, {}, json.dumps({"firewall_rules": self.rules[group_id], "meta": NO_MORE})

    def add_rule(self, request: Any) -> Answer:
        self.firewall_writes.append(f"POST {path_of(request)}")
        group_id = self.group_of(request)
        if group_id not in self.groups:
            return vultr_error(404, "Invalid firewall group")
        body = body_of(request)
        if body.get("ip_type") != "v4" or body.get("protocol") not in ("icmp", "tcp", "udp", "gre"):
            return vultr_error(400, "Invalid ip_type or protocol")
        if not VULTR_PORT.fullmatch(str(body.get("port", ""))):
            return vultr_error(400, "Invalid port: a port or a colon separated range")
        try:
            network = ipaddress.IPv4Network(f"{body['subnet']}/{body['subnet_size']}")
        except (KeyError, ValueError):
            return vultr_error(400, "Invalid subnet")
        if len(self.rules[group_id]) >= self.groups[group_id]["max_rule_count"]:
            return vultr_error(400, "Maximum number of rules reached")
        same = ("protocol", "port", "subnet", "subnet_size")
        if any(all(r[k] == body[k] for k in same) for r in self.rules[group_id]):
            return vultr_error(400, "Rule already exists")
        self.rule_numbers += 1
        rule = {
            "id": self.rule_numbers,
            "type": "v4",
            "ip_type": "v4",
            "action": "accept",
            "protocol": body["protocol"],
            "port": body["port"],
            "subnet": str(network.network_address),
            "subnet_size": network.prefixlen,
            "source": "",
            "notes": body.get("notes", ""),
        }
        self.rules[group_id].append(rule)
        return 201, {}, json.dumps({"firewall_rule": rule})

    def delete_rule(self, request: Any) -> Answer:
        self.firewall_writes.append(f"DELETE {path_of(request)}")
        group_id = self.group_of(request)
        number = int(path_of(request).rsplit("/", 1)[1])
        before = len(self.rules.get(group_id, []))
        self.rules[group_id] = [r for r in self.rules.get(group_id, []) if r["id"] != number]
        if len(self.rules[group_id]) == before:
            return vultr_error(404, "Invalid firewall rule")
        return 204, {}, ""

    # What the shared tests read

    def vm_addresses(self) -> dict[str, str]:
        return {i["label"]: i["internal_ip"] for i in self.instances.values()}

    def firewall_ids(self) -> list[str]:
        return list(self.groups)

    def admitted(self) -> dict[tuple[str, str], set[str]]:
        # A Vultr group drops whatever no rule accepts; outbound is not filtered.
        found: dict[tuple[str, str], set[str]] = {}
        for rules in self.rules.values():
            for rule in rules:
                key = (rule["protocol"], rule["port"].replace(":", "-"))
                found.setdefault(key, set()).add(f"{rule['subnet']}/{rule['subnet_size']}")
        return found

    def behind(self) -> dict[str, set[str]]:
        return {i["label"]: {i["firewall_group_id"]} - {""} for i in self.instances.values()}

    def take_out(self, vm_name: str) -> None:
        for instance in self.instances.values():
            if instance["label"] == vm_name:
                instance["firewall_group_id"] = ""


# --- the same checks for both --------------------------------------------------------------------

PROVIDERS: dict[str, tuple[type[FakeLinode] | type[FakeVultr], str, str]] = {
    "linode": (FakeLinode, "eu-west", "g6-standard-2"),
    "vultr": (FakeVultr, "ams", "vc2-2c-4gb"),
}


def cloud_of(kind: str, http: responses.RequestsMock) -> tuple[FakeCloud, str, str]:
    fake_class, region, size = PROVIDERS[kind]
    return fake_class(http), region, size


def member_rules(addresses: set[str]) -> dict[tuple[str, str], set[str]]:
    return {ports: {f"{a}/32" for a in addresses} for ports in K3S_MEMBER_PORTS}


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
@pytest.mark.parametrize(
    ("settings", "api_sources"),
    [
        ({}, {"0.0.0.0/0"}),
        ({"api_cidrs": "198.51.100.0/24, 203.0.113.0/24"}, {"198.51.100.0/24", "203.0.113.0/24"}),
    ],
)
def test_firewall_admits_the_members_by_address_through_scale_down_and_destroy(
    http: responses.RequestsMock, kind: str, settings: dict[str, str], api_sources: set[str]
) -> None:
    fake, region, size = cloud_of(kind, http)
    driver = fake.driver(**settings)
    pools = [make_pool("general", size, 1), make_pool("batch", size, 2)]
    ctx = FakeContext(make_cluster("jobs", region=region), pools)
    ext = ctx.cluster.external_name

    outcomes = drive(driver, ctx)

    members = fake.vm_addresses()
    assert sorted(members) == [f"{ext}-batch-0", f"{ext}-batch-1", f"{ext}-general-0"]
    # The API port from api_cidrs; k3s's ports from the three VMs' private addresses only; nothing
    # else (no SSH).
    admitted = fake.admitted()
    assert admitted == member_rules(set(members.values())) | {
        ("tcp", "6443"): api_sources | {f"{a}/32" for a in members.values()}
    }
    [firewall_id] = fake.firewall_ids()
    [record] = ctx.resources("firewall")
    assert (record.name, record.provider_id) == (cluster_tag(ext), firewall_id)
    assert fake.behind() == {name: {firewall_id} for name in members}
    assert any(o.message == "Firewall admits the cluster's 3 machines" for o in outcomes)
    assert ctx.endpoint.startswith("https://") and outcomes[-1].done

    pools[1].count = 1
    drive(driver, ctx)

    gone = members.pop(f"{ext}-batch-1")
    assert fake.vm_addresses() == members
    admitted = fake.admitted()
    assert all(f"{gone}/32" not in sources for sources in admitted.values())
    assert admitted == member_rules(set(members.values())) | {
        ("tcp", "6443"): api_sources | {f"{a}/32" for a in members.values()}
    }

    drive(driver, ctx, destroy=True)

    assert fake.vm_addresses() == {}
    assert fake.firewall_ids() == []
    assert ctx.resources() == []


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
def test_pod_traffic_stays_on_wireguard(http: responses.RequestsMock, kind: str) -> None:
    """The address rules are defence in depth: flannel keeps encrypting pod traffic."""
    fake, region, size = cloud_of(kind, http)
    ctx = FakeContext(make_cluster("jobs", region=region), [make_pool("general", size, 1)])

    drive(fake.driver(), ctx)

    created = fake.created[0]
    user_data = created["metadata"]["user_data"] if kind == "linode" else created["user_data"]
    document = yaml.safe_load(base64.b64decode(user_data).decode())
    config = yaml.safe_load(document["write_files"][-1]["content"])
    assert config["flannel-backend"] == "wireguard-native"


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
def test_firewall_left_by_a_dead_worker_is_adopted(http: responses.RequestsMock, kind: str) -> None:
    """Created at the provider but never recorded: found again, no second one."""
    fake, region, size = cloud_of(kind, http)
    driver = fake.driver()
    ctx = FakeContext(make_cluster("jobs", region=region), [make_pool("general", size, 2)])
    ctx.die_before_recording = "firewall"

    with pytest.raises(WorkerKilled):
        drive(driver, ctx)

    [planned] = ctx.resources("firewall")
    assert planned.state != ResourceState.CREATED
    [firewall_id] = fake.firewall_ids()

    drive(driver, ctx)

    assert fake.firewall_ids() == [firewall_id]
    [record] = ctx.resources("firewall")
    assert record.provider_id == firewall_id
    members = fake.vm_addresses()
    assert fake.behind() == {name: {firewall_id} for name in members}
    assert fake.admitted()[("udp", "8472")] == {f"{a}/32" for a in members.values()}

    drive(driver, ctx, destroy=True)

    assert fake.firewall_ids() == [] and fake.vm_addresses() == {} and ctx.resources() == []


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
def test_a_pass_with_nothing_changed_changes_no_firewall(http: responses.RequestsMock, kind: str) -> None:
    fake, region, size = cloud_of(kind, http)
    driver = fake.driver()
    ctx = FakeContext(make_cluster("jobs", region=region), [make_pool("general", size, 2)])
    drive(driver, ctx)
    writes = list(fake.firewall_writes)
    admitted = fake.admitted()

    outcomes = drive(driver, ctx)

    assert len(outcomes) == 1 and outcomes[0].done
    assert fake.firewall_writes == writes
    assert fake.admitted() == admitted


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
def test_a_vm_taken_out_of_the_firewall_is_put_back(http: responses.RequestsMock, kind: str) -> None:
    fake, region, size = cloud_of(kind, http)
    driver = fake.driver()
    ctx = FakeContext(make_cluster("jobs", region=region), [make_pool("general", size, 2)])
    drive(driver, ctx)
    [firewall_id] = fake.firewall_ids()
    agent = f"{ctx.cluster.external_name}-general-1"
    fake.take_out(agent)

    outcomes = drive(driver, ctx)

    assert outcomes[0].message == f"VMs put behind the firewall: {agent}"
    assert fake.behind()[agent] == {firewall_id}


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
def test_a_new_api_cidr_reaches_the_firewall_on_the_next_pass(
    http: responses.RequestsMock, kind: str
) -> None:
    fake, region, size = cloud_of(kind, http)
    ctx = FakeContext(make_cluster("jobs", region=region), [make_pool("general", size, 1)])
    drive(fake.driver(), ctx)
    [member] = fake.vm_addresses().values()

    drive(fake.driver(api_cidrs="192.0.2.0/24"), ctx)

    assert fake.admitted()[("tcp", "6443")] == {"192.0.2.0/24", f"{member}/32"}


def test_linode_is_assigned_to_the_firewall_right_after_it_is_created(http: responses.RequestsMock) -> None:
    fake = FakeLinode(http)
    ctx = FakeContext(make_cluster("jobs", region="eu-west"), [make_pool("general", "g6-standard-2", 2)])

    drive(fake.driver(), ctx)

    assert fake.log == ["POST linode 5001", "POST device 5001", "POST linode 5002", "POST device 5002"]


def test_linode_is_assigned_to_the_firewall_when_the_assignment_failed_after_creating_it(
    http: responses.RequestsMock,
) -> None:
    """The Linode exists but is neither assigned nor recorded: adopted, then assigned."""
    fake = FakeLinode(http)
    driver = fake.driver()
    ctx = FakeContext(make_cluster("jobs", region="eu-west"), [make_pool("general", "g6-standard-2", 1)])
    fake.failing_assignments = 1

    with pytest.raises(ProviderError, match="Linode: Please try again"):
        drive(driver, ctx)

    [name] = fake.vm_addresses()
    assert fake.behind() == {name: set()}

    drive(driver, ctx)

    assert len(fake.instances) == 1
    [firewall_id] = fake.firewall_ids()
    assert fake.behind() == {name: {firewall_id}}


def test_linode_firewall_label_is_valid_for_a_long_cluster_name(http: responses.RequestsMock) -> None:
    """Linode firewall labels are 3 to 32 characters: a long cluster tag is shortened, stably."""
    fake = FakeLinode(http)
    driver = fake.driver()
    ctx = FakeContext(make_cluster("a-very-long-cluster-name-for-jobs", region="eu-west"), [])
    ctx.pool_list = [make_pool("general", "g6-standard-2", 1)]
    assert len(cluster_tag(ctx.cluster.external_name)) > 32

    drive(driver, ctx)

    [firewall] = fake.firewalls.values()
    assert len(firewall["label"]) <= 32 and firewall["label"].startswith("flotilla-a-very-long")
    assert firewall["tags"] == [cluster_tag(ctx.cluster.external_name)]

    drive(driver, ctx, destroy=True)

    assert fake.firewalls == {}


def test_vultr_instances_join_the_group_when_created(http: responses.RequestsMock) -> None:
    fake = FakeVultr(http)
    ctx = FakeContext(make_cluster("jobs", region="ams"), [make_pool("general", "vc2-2c-4gb", 2)])

    drive(fake.driver(), ctx)

    [group_id] = fake.groups
    assert [body["firewall_group_id"] for body in fake.created] == [group_id, group_id]
    assert not any(write.startswith("PATCH") for write in fake.firewall_writes)


def test_vultr_group_deletion_waits_while_instances_still_use_it(http: responses.RequestsMock) -> None:
    fake = FakeVultr(http)
    driver = fake.driver()
    ctx = FakeContext(make_cluster("jobs", region="ams"), [make_pool("general", "vc2-2c-4gb", 1)])
    drive(driver, ctx)
    # Vultr still counts the instance being destroyed for a while, then refuses once more.
    fake.lagging_counts = 2
    fake.in_use_refusals = 1

    outcomes = drive(driver, ctx, destroy=True)

    waits = [o for o in outcomes if o.message.startswith("Waiting for the VMs to release firewall")]
    assert len(waits) == 3 and all(o.retry_after > 0 for o in waits)
    assert fake.refused == 1
    assert outcomes[-1].done and fake.groups == {} and ctx.resources() == []
