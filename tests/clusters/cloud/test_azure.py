"""Azure clusters through libcloud's real ARM driver and the adapter's own ARM requests, against an
in-memory fake of the Resource Manager endpoints they call (`responses`), answering in Azure's JSON
shapes with just the fields libcloud and the adapter read."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import yaml

from clusters.choices import ResourceState
from clusters.providers.cloud import AzureDriver, cluster_tag
from tests.clusters.cloud.fake_context import FakeContext, WorkerKilled, drive, make_cluster, make_pool

TOKEN_URL = "https://login.microsoftonline.com/tenant-1/oauth2/token"
ARM_URL = re.compile(r"https://management\.azure\.com(:443)?/subscriptions/sub-1/")
GROUP = "/subscriptions/sub-1/resourceGroups/flotilla-rg"
RESOURCE_PATH = re.compile(
    rf"^{GROUP}/providers/(?P<namespace>Microsoft\.\w+)/(?P<kind>\w+)(?:/(?P<name>[^/]+))?(?P<view>/InstanceView)?$",
    re.IGNORECASE,
)
CREDENTIALS = {
    "tenant_id": "tenant-1",
    "subscription_id": "sub-1",
    "client_id": "app-1",
    "client_secret": "s",
}
SETTINGS = {"resource_group": "flotilla-rg", "network": "flotilla-vnet"}
NETWORK_KINDS = (
    "networkInterfaces",
    "publicIPAddresses",
    "networkSecurityGroups",
    "applicationSecurityGroups",
)
KINDS = {"virtualMachines": "Microsoft.Compute", **dict.fromkeys(NETWORK_KINDS, "Microsoft.Network")}
# What Azure answers when asked to delete something another resource still refers to.
IN_USE_CODES = {
    "networkInterfaces": "NicInUse",
    "publicIPAddresses": "PublicIPAddressCannotBeDeleted",
    "networkSecurityGroups": "InUseNetworkSecurityGroupCannotBeDeleted",
    "applicationSecurityGroups": "InUseApplicationSecurityGroupCannotBeDeleted",
}

Answer = tuple[int, dict[str, str], str]


def error(status: int, code: str, message: str) -> Answer:
    return status, {}, json.dumps({"error": {"code": code, "message": message}})


def references(value: Any) -> Iterator[str]:
    """Every resource id `value` refers to (the virtual network is not part of the fake)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "id" and isinstance(item, str) and "/virtualNetworks/" not in item:
                yield item.lower()
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Every HTTP request of the test must be answered by a registered fake."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


class FakeAzure:
    """One resource group kept in memory: VMs, NICs, public IPs, network and application security groups.

    PUT creates or replaces (refusing references to resources it does not have); DELETE answers 202
    and removes at once, 204 when there is nothing to delete, and refuses what another resource
    still refers to. A VM runs as soon as it exists.
    """

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.stores: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.created: list[dict[str, Any]] = []  # VM bodies as sent (Azure never returns customData)
        self.requests: list[tuple[str, str, str, str]] = []  # method, kind, name, api-version
        # Answer the next NSG deletions with Azure's in-use refusal (a NIC being deleted still holds it).
        self.nsg_in_use = 0
        self.in_use_answers = 0
        self.numbers = dict.fromkeys(KINDS, 0)
        mock.post(
            TOKEN_URL, json={"access_token": "eyJ.fake", "token_type": "Bearer", "expires_on": "4102444800"}
        )
        for method in ("GET", "PUT", "DELETE"):
            mock.add_callback(method, ARM_URL, callback=self.handle)

    @property
    def vms(self) -> dict[str, dict[str, Any]]:
        return self.stores["virtualMachines"]

    @property
    def nics(self) -> dict[str, dict[str, Any]]:
        return self.stores["networkInterfaces"]

    @property
    def ips(self) -> dict[str, dict[str, Any]]:
        return self.stores["publicIPAddresses"]

    @property
    def nsgs(self) -> dict[str, dict[str, Any]]:
        return self.stores["networkSecurityGroups"]

    @property
    def asgs(self) -> dict[str, dict[str, Any]]:
        return self.stores["applicationSecurityGroups"]

    def empty(self) -> bool:
        return not any(self.stores.values())

    def kind_of(self, path: str) -> tuple[str, str | None, bool] | None:
        match = RESOURCE_PATH.match(path)
        kind = next((k for k in KINDS if match and k.lower() == match["kind"].lower()), None)
        if match is None or kind is None:
            return None
        return kind, match["name"], bool(match["view"])

    def handle(self, request: Any) -> Answer:
        url = urlsplit(request.url)
        found = self.kind_of(url.path)
        if found is None:
            return error(404, "InvalidResourceType", f"No fake for {url.path}")
        kind, name, view = found
        version = parse_qs(url.query).get("api-version", [""])[0]
        self.requests.append((request.method, kind, name or "", version))
        store = self.stores[kind]
        if name is None:
            return 200, {}, json.dumps({"value": list(store.values())})
        if request.method == "PUT":
            return self.put(kind, name, json.loads(request.body))
        if request.method == "DELETE":
            return self.delete(kind, name)
        if name not in store:
            return error(
                404, "ResourceNotFound", f"The Resource '{KINDS[kind]}/{kind}/{name}' was not found."
            )
        if view:
            statuses = [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/running"}]
            return 200, {}, json.dumps({"statuses": statuses})
        return 200, {}, json.dumps(store[name])

    def exists(self, resource_id: str) -> bool:
        found = self.kind_of(urlsplit(resource_id).path)
        return found is not None and found[1] in self.stores[found[0]]

    def put(self, kind: str, name: str, body: dict[str, Any]) -> Answer:
        resource_id = f"{GROUP}/providers/{KINDS[kind]}/{kind}/{name}"
        properties = dict(body.get("properties") or {})
        missing = [ref for ref in references(properties) if not self.exists(ref)]
        if missing:
            return error(
                400,
                "InvalidResourceReference",
                f"Resource {missing[0]} referenced by {resource_id} not found.",
            )
        store = self.stores[kind]
        new = name not in store
        self.numbers[kind] += new
        number = self.numbers[kind]
        properties["provisioningState"] = "Succeeded"
        if kind == "virtualMachines":
            self.created.append(body)
            properties["osProfile"] = {k: v for k, v in properties["osProfile"].items() if k != "customData"}
        elif kind == "networkInterfaces":
            properties["ipConfigurations"][0]["properties"]["privateIPAddress"] = f"10.0.0.{3 + number}"
        elif kind == "publicIPAddresses":
            properties["ipAddress"] = f"203.0.113.{10 + number}"
        resource = {"id": resource_id, "name": name, "location": body["location"], "tags": body.get("tags")}
        if "sku" in body:
            resource["sku"] = body["sku"]
        store[name] = resource | {"properties": properties}
        answer = store[name]
        if kind == "publicIPAddresses":
            # Azure finishes provisioning a public IP after answering: a GET shows it done.
            answer = answer | {"properties": properties | {"provisioningState": "Updating"}}
        return (201 if new else 200), {}, json.dumps(answer)

    def delete(self, kind: str, name: str) -> Answer:
        store = self.stores[kind]
        if name not in store:
            return 204, {}, ""
        resource_id = store[name]["id"]
        holders = [
            other["id"]
            for others in self.stores.values()
            for other in others.values()
            if resource_id.lower() in set(references(other.get("properties")))
        ]
        if kind == "networkSecurityGroups" and self.nsg_in_use:
            self.nsg_in_use -= 1
            holders.append(f"{GROUP}/providers/Microsoft.Network/networkInterfaces/being-deleted")
        if holders:
            self.in_use_answers += 1
            message = f"{resource_id} cannot be deleted because it is in use by the following resources: "
            return error(400, IN_USE_CODES[kind], message + ", ".join(holders))
        del store[name]
        return 202, {}, ""


def allow(priority: int, protocol: str, ports: str, **sources: Any) -> dict[str, Any]:
    return {
        "priority": priority,
        "direction": "Inbound",
        "access": "Allow",
        "protocol": protocol,
        "sourcePortRange": "*",
        "destinationPortRange": ports,
        **sources,
    }


def azure_driver(**settings: Any) -> AzureDriver:
    return AzureDriver(CREDENTIALS, SETTINGS | settings)


@pytest.mark.parametrize(
    ("settings", "api_sources"),
    [
        ({}, ["0.0.0.0/0"]),
        ({"api_cidrs": "198.51.100.0/24, 203.0.113.0/24"}, ["198.51.100.0/24", "203.0.113.0/24"]),
    ],
)
def test_azure_creates_and_destroys_a_cluster_behind_its_security_groups(
    http: responses.RequestsMock, settings: dict[str, str], api_sources: list[str]
) -> None:
    fake = FakeAzure(http)
    driver = azure_driver(**settings)
    ctx = FakeContext(make_cluster("shop", region="westeurope"), [make_pool("general", "Standard_B2s", 2)])
    ext = ctx.cluster.external_name
    tag = cluster_tag(ext)

    drive(driver, ctx)

    assert sorted(fake.vms) == [f"{ext}-general-0", f"{ext}-general-1"]
    [nsg] = fake.nsgs.values()
    [asg] = fake.asgs.values()
    assert (nsg["name"], asg["name"]) == (tag, f"{tag}-members")
    assert nsg["location"] == asg["location"] == "westeurope"
    members = [{"id": asg["id"]}]
    from_members = {
        "sourceApplicationSecurityGroups": members,
        "destinationApplicationSecurityGroups": members,
    }
    # The API port from api_cidrs, k3s's ports from the cluster's machines only, the rest of the
    # virtual network denied before Azure's default rule admits it; nothing else (no SSH).
    assert {r["name"]: r["properties"] for r in nsg["properties"]["securityRules"]} == {
        "addresses-tcp-6443": allow(
            100, "Tcp", "6443", sourceAddressPrefixes=api_sources, destinationAddressPrefix="*"
        ),
        "members-tcp-6443": allow(110, "Tcp", "6443", **from_members),
        "members-tcp-10250": allow(120, "Tcp", "10250", **from_members),
        "members-udp-8472": allow(130, "Udp", "8472", **from_members),
        "members-udp-51820-51821": allow(140, "Udp", "51820-51821", **from_members),
        "deny-virtual-network": {
            "priority": 4000,
            "direction": "Inbound",
            "access": "Deny",
            "protocol": "*",
            "sourceAddressPrefix": "VirtualNetwork",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "*",
        },
    }
    [record] = ctx.resources("firewall")
    assert record.provider_id == nsg["id"]
    for vm in fake.vms.values():
        [nic_ref] = vm["properties"]["networkProfile"]["networkInterfaces"]
        nic = fake.nics[f"{vm['name']}-nic"]
        assert nic_ref["id"] == nic["id"]
        assert nic["properties"]["networkSecurityGroup"] == {"id": nsg["id"]}
        [config] = nic["properties"]["ipConfigurations"]
        assert config["properties"]["applicationSecurityGroups"] == members
        assert config["properties"]["subnet"]["id"].endswith("/virtualNetworks/flotilla-vnet/subnets/default")
        ip = fake.ips[f"{vm['name']}-ip"]
        assert config["properties"]["publicIPAddress"] == {"id": ip["id"]}
        assert ip["sku"]["name"] == "Standard"
        assert ip["properties"]["publicIPAllocationMethod"] == "Static"
        assert ip["properties"]["publicIPAddressVersion"] == "IPv4"
        assert vm["tags"] == {"flotilla-cluster": tag}
    # Every network resource the adapter writes goes through a current API version.
    assert {v for m, kind, _, v in fake.requests if m != "GET" and kind in NETWORK_KINDS} == {"2024-05-01"}
    server, agent = fake.created
    server_data = base64.b64decode(server["properties"]["osProfile"]["customData"]).decode()
    server_config = yaml.safe_load(yaml.safe_load(server_data)["write_files"][-1]["content"])
    # The NSG admits members only, so flannel's VXLAN is not reachable from outside.
    assert server_config["flannel-backend"] == "vxlan"
    agent_data = base64.b64decode(agent["properties"]["osProfile"]["customData"]).decode()
    agent_config = yaml.safe_load(yaml.safe_load(agent_data)["write_files"][-1]["content"])
    assert agent_config["server"] == "https://10.0.0.4:6443"
    assert ctx.endpoint == "https://203.0.113.11:6443"

    drive(driver, ctx, destroy=True)

    assert fake.empty()
    assert ctx.resources() == []


def test_azure_security_groups_left_by_a_dead_worker_are_not_made_twice(http: responses.RequestsMock) -> None:
    """Created at Azure but never recorded: the next step PUTs the same groups again, no second one."""
    fake = FakeAzure(http)
    driver = azure_driver()
    ctx = FakeContext(make_cluster("shop", region="westeurope"), [make_pool("general", "Standard_B2s", 1)])
    ctx.die_before_recording = "firewall"

    with pytest.raises(WorkerKilled):
        drive(driver, ctx)

    [planned] = ctx.resources("firewall")
    assert planned.state != ResourceState.CREATED
    assert (len(fake.nsgs), len(fake.asgs)) == (1, 1)

    drive(driver, ctx)

    [nsg] = fake.nsgs.values()
    assert len(fake.asgs) == 1
    assert sum(1 for m, kind, _, _ in fake.requests if (m, kind) == ("PUT", "networkSecurityGroups")) == 2
    [record] = ctx.resources("firewall")
    assert record.provider_id == nsg["id"]
    [nic] = fake.nics.values()
    assert nic["properties"]["networkSecurityGroup"] == {"id": nsg["id"]}

    drive(driver, ctx, destroy=True)

    assert fake.empty() and ctx.resources() == []


def test_azure_firewall_deletion_waits_while_azure_says_it_is_in_use(http: responses.RequestsMock) -> None:
    fake = FakeAzure(http)
    driver = azure_driver()
    ctx = FakeContext(make_cluster("shop", region="westeurope"), [make_pool("general", "Standard_B2s", 1)])
    drive(driver, ctx)
    fake.nsg_in_use = 2

    outcomes = drive(driver, ctx, destroy=True)

    waits = [o for o in outcomes if o.message.startswith("Waiting for the VMs to release firewall")]
    # Two in-use refusals, then each group's deletion accepted (202) and found gone on a later step.
    assert fake.in_use_answers == 2
    assert len(waits) == 4 and all(o.retry_after > 0 for o in waits)
    assert outcomes[-1].done
    assert fake.empty() and ctx.resources() == []
