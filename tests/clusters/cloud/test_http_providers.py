"""DigitalOcean, Linode, Vultr, GCE, Azure and OpenStack through libcloud's real drivers, against
HTTP-level fakes (`responses`) answering in each provider's JSON shape. The fixtures are small and
hand-written: just the fields libcloud reads."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import responses
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clusters.exceptions import CredentialsRejected
from clusters.providers.cloud import (
    CLOUD_DRIVERS,
    AzureDriver,
    DigitalOceanDriver,
    GceDriver,
    LinodeDriver,
    OpenStackDriver,
    VultrDriver,
    cluster_tag,
)
from tests.clusters.cloud.fake_context import FakeContext, drive, make_cluster, make_pool


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Every HTTP request of the test must be answered by a registered fake."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def payload(request: Any) -> dict[str, Any]:
    return dict(json.loads(request.body))


def test_every_provider_kind_has_a_driver() -> None:
    assert set(CLOUD_DRIVERS) == {"ec2", "digitalocean", "gce", "linode", "vultr", "azure", "openstack"}
    for kind, driver in CLOUD_DRIVERS.items():
        assert driver.kind == kind
        assert driver.credential_fields, kind
        assert any(f.secret for f in driver.credential_fields), kind


# --- DigitalOcean --------------------------------------------------------------------------------

DO = "https://api.digitalocean.com/v2"
DO_REGIONS = {
    "regions": [
        {"slug": "ams3", "name": "Amsterdam 3", "available": True, "features": ["metadata"]},
        {"slug": "nyc2", "name": "New York 2", "available": False, "features": []},
    ],
    "links": {},
}
DO_SIZES = {
    "sizes": [
        {
            "slug": "s-2vcpu-4gb",
            "memory": 4096,
            "vcpus": 2,
            "disk": 80,
            "transfer": 4.0,
            "price_monthly": 24.0,
            "price_hourly": 0.0357,
            "regions": ["ams3", "fra1"],
        },
        {
            "slug": "s-8vcpu-16gb",
            "memory": 16384,
            "vcpus": 8,
            "disk": 320,
            "transfer": 6.0,
            "price_monthly": 96.0,
            "price_hourly": 0.1429,
            "regions": ["fra1"],
        },
    ],
    "links": {},
}


class FakeDigitalOcean:
    """Droplets kept in memory: created "new", listed "active" with a private and a public address."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.droplets: dict[int, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        mock.get(f"{DO}/regions", json=DO_REGIONS)
        mock.get(f"{DO}/sizes", json=DO_SIZES)
        mock.add_callback("GET", f"{DO}/droplets", callback=self.list)
        mock.add_callback("POST", f"{DO}/droplets", callback=self.create)
        mock.add_callback("DELETE", re.compile(rf"{DO}/droplets/\d+"), callback=self.delete)
        self.firewalls: dict[str, dict[str, Any]] = {}
        mock.add_callback("GET", f"{DO}/firewalls", callback=self.list_firewalls)
        mock.add_callback("POST", f"{DO}/firewalls", callback=self.create_firewall)
        mock.add_callback("POST", re.compile(rf"{DO}/firewalls/[\w-]+/rules"), callback=self.add_rules)
        mock.add_callback("DELETE", re.compile(rf"{DO}/firewalls/[\w-]+"), callback=self.delete_firewall)

    def list_firewalls(self, request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps({"firewalls": list(self.firewalls.values()), "links": {}})

    def create_firewall(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = payload(request)
        firewall = {"id": f"fw-{len(self.firewalls) + 1}", "status": "succeeded", **body}
        self.firewalls[firewall["id"]] = firewall
        return 202, {}, json.dumps({"firewall": firewall})

    def add_rules(self, request: Any) -> tuple[int, dict[str, str], str]:
        firewall = self.firewalls[request.url.split("/firewalls/")[1].split("/")[0]]
        for key, rules in payload(request).items():
            firewall[key] = firewall.get(key, []) + rules
        return 204, {}, ""

    def delete_firewall(self, request: Any) -> tuple[int, dict[str, str], str]:
        firewall_id = request.url.rsplit("/", 1)[1].split("?")[0]
        if self.firewalls.pop(firewall_id, None) is None:
            return (
                404,
                {},
                json.dumps({"id": "not_found", "message": "The resource you requested could not be found."}),
            )
        return 204, {}, ""

    def admitted(self, protocol: str, ports: str) -> dict[str, set[str]]:
        """Who may reach `ports`, over all firewalls: {"addresses": {...}, "tags": {...}}."""
        found: dict[str, set[str]] = {"addresses": set(), "tags": set()}
        for firewall in self.firewalls.values():
            for rule in firewall.get("inbound_rules", []):
                if (rule["protocol"], rule["ports"]) == (protocol, ports):
                    for kind, values in rule["sources"].items():
                        found[kind].update(values)
        return found

    def list(self, request: Any) -> tuple[int, dict[str, str], str]:
        for droplet in self.droplets.values():
            droplet["status"] = "active"
            n = droplet["id"] - 100
            droplet["networks"] = {
                "v4": [
                    {"ip_address": f"10.110.0.{n}", "type": "private"},
                    {"ip_address": f"203.0.113.{n}", "type": "public"},
                ]
            }
        return 200, {}, json.dumps({"droplets": list(self.droplets.values()), "links": {}})

    def create(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = payload(request)
        self.created.append(body)
        droplet = {
            "id": 101 + len(self.created) - 1,
            "name": body["name"],
            "status": "new",
            "memory": 4096,
            "vcpus": 2,
            "disk": 80,
            "created_at": "2026-11-25T10:00:00Z",
            "networks": {"v4": []},
            "region": {"slug": body["region"], "name": "Amsterdam 3"},
            "tags": body.get("tags", []),
        }
        self.droplets[droplet["id"]] = droplet
        return 202, {}, json.dumps({"droplet": droplet})

    def delete(self, request: Any) -> tuple[int, dict[str, str], str]:
        droplet_id = int(request.url.rsplit("/", 1)[1].split("?")[0])
        self.droplets.pop(droplet_id)
        return 204, {}, ""


def test_digitalocean_validate_regions_and_sizes(http: responses.RequestsMock) -> None:
    FakeDigitalOcean(http)
    driver = DigitalOceanDriver({"token": "dop_v1_good"}, {})

    driver.validate()

    assert http.calls[0].request.headers["Authorization"] == "Bearer dop_v1_good"
    assert [(r.id, r.name) for r in driver.regions()] == [("ams3", "Amsterdam 3")]
    [size] = driver.sizes("ams3")
    assert (size.id, size.cpus, size.memory_mb, size.price_hourly) == ("s-2vcpu-4gb", 2, 4096, 0.0357)


def test_digitalocean_rejected_token(http: responses.RequestsMock) -> None:
    http.get(
        f"{DO}/regions", status=401, json={"id": "Unauthorized", "message": "Unable to authenticate you"}
    )
    with pytest.raises(
        CredentialsRejected, match="DigitalOcean rejected the credentials: Unable to authenticate you"
    ):
        DigitalOceanDriver({"token": "dop_v1_revoked"}, {}).validate()


def test_digitalocean_creates_and_destroys_a_cluster(http: responses.RequestsMock) -> None:
    fake = FakeDigitalOcean(http)
    driver = DigitalOceanDriver({"token": "dop_v1_good"}, {})
    ctx = FakeContext(make_cluster("shop", region="ams3"), [make_pool("general", "s-2vcpu-4gb", 2)])
    ext = ctx.cluster.external_name

    drive(driver, ctx)

    assert [d["name"] for d in fake.droplets.values()] == [f"{ext}-general-0", f"{ext}-general-1"]
    server, agent = fake.created
    assert (
        server["region"] == "ams3"
        and server["size"] == "s-2vcpu-4gb"
        and server["image"] == "ubuntu-24-04-x64"
    )
    tag = cluster_tag(ext)
    assert server["tags"] == [tag]
    # The firewall follows the cluster's tag: the API port from anywhere (api_cidrs' default),
    # k3s's member ports from the cluster's own droplets only, nothing else (no SSH).
    [firewall] = fake.firewalls.values()
    assert firewall["name"] == tag and firewall["tags"] == [tag]
    assert fake.admitted("tcp", "6443") == {"addresses": {"0.0.0.0/0"}, "tags": {tag}}
    assert fake.admitted("tcp", "10250") == {"addresses": set(), "tags": {tag}}
    assert fake.admitted("udp", "8472") == {"addresses": set(), "tags": {tag}}
    assert fake.admitted("tcp", "22") == {"addresses": set(), "tags": set()}
    assert {(r["protocol"], r.get("ports")) for r in firewall["outbound_rules"]} == {
        ("tcp", "0"),
        ("udp", "0"),
        ("icmp", None),
    }
    [record] = ctx.resources("firewall")
    assert record.provider_id == firewall["id"]
    server_config = yaml.safe_load(yaml.safe_load(server["user_data"])["write_files"][-1]["content"])
    # A firewall admits members only, so flannel's VXLAN is not reachable from outside.
    assert server_config["flannel-backend"] == "vxlan"
    agent_config = yaml.safe_load(yaml.safe_load(agent["user_data"])["write_files"][-1]["content"])
    assert agent_config["server"] == "https://10.110.0.1:6443"
    assert ctx.endpoint == "https://203.0.113.1:6443"

    drive(driver, ctx, destroy=True)

    assert fake.droplets == {}
    assert fake.firewalls == {}
    assert ctx.resources() == []


def test_digitalocean_firewall_left_by_a_dead_worker_is_adopted_and_completed(
    http: responses.RequestsMock,
) -> None:
    """Created at DigitalOcean but never recorded: found by name, its missing rules added, no second one."""
    fake = FakeDigitalOcean(http)
    driver = DigitalOceanDriver({"token": "dop_v1_good"}, {"api_cidrs": "198.51.100.0/24"})
    ctx = FakeContext(make_cluster("shop", region="ams3"), [make_pool("general", "s-2vcpu-4gb", 1)])
    tag = cluster_tag(ctx.cluster.external_name)
    fake.firewalls["fw-old"] = {
        "id": "fw-old",
        "name": tag,
        "tags": [tag],
        "inbound_rules": [{"protocol": "tcp", "ports": "6443", "sources": {"tags": [tag]}}],
        "outbound_rules": [],
    }

    drive(driver, ctx)

    assert list(fake.firewalls) == ["fw-old"]
    assert fake.admitted("tcp", "6443") == {"addresses": {"198.51.100.0/24"}, "tags": {tag}}
    assert fake.admitted("udp", "51820-51821") == {"addresses": set(), "tags": {tag}}
    [record] = ctx.resources("firewall")
    assert record.provider_id == "fw-old"
    # Already deleted by hand: destroy still finishes.
    del fake.firewalls["fw-old"]

    drive(driver, ctx, destroy=True)

    assert fake.droplets == {} and ctx.resources() == []


# --- Linode --------------------------------------------------------------------------------------

LINODE = "https://api.linode.com/v4"
LINODE_REGIONS = {
    "data": [
        {
            "id": "eu-west",
            "country": "gb",
            "capabilities": ["Linodes", "Metadata"],
            "status": "ok",
            "resolvers": {},
        },
        {"id": "us-east", "country": "us", "capabilities": ["Linodes"], "status": "ok", "resolvers": {}},
    ],
    "page": 1,
    "pages": 1,
    "results": 2,
}
LINODE_TYPES = {
    "data": [
        {
            "id": "g6-standard-2",
            "label": "Linode 4GB",
            "class": "standard",
            "disk": 81920,
            "memory": 4096,
            "vcpus": 2,
            "network_out": 4000,
            "transfer": 4000,
            "price": {"hourly": 0.036, "monthly": 24.0},
            "addons": {},
            "successor": None,
            "gpus": 0,
        }
    ],
    "page": 1,
    "pages": 1,
    "results": 1,
}


class FakeLinode:
    """Linodes kept in memory: created "provisioning", listed "running" with both addresses."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.instances: dict[int, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        mock.get(f"{LINODE}/regions", json=LINODE_REGIONS)
        mock.get(f"{LINODE}/linode/types", json=LINODE_TYPES)
        mock.add_callback("GET", f"{LINODE}/linode/instances", callback=self.list)
        mock.add_callback("POST", f"{LINODE}/linode/instances", callback=self.create)
        mock.add_callback("DELETE", re.compile(rf"{LINODE}/linode/instances/\d+"), callback=self.delete)
        # The cluster's cloud firewall (its rules are checked in test_address_firewalls.py).
        self.firewalls: dict[str, dict[str, Any]] = {}
        firewall = rf"{LINODE}/networking/firewalls/(\d+)"
        mock.add_callback("GET", f"{LINODE}/networking/firewalls", callback=self.list_firewalls)
        mock.add_callback("POST", f"{LINODE}/networking/firewalls", callback=self.create_firewall)
        mock.add_callback("GET", re.compile(rf"{firewall}/rules"), callback=self.firewall_part)
        mock.add_callback("PUT", re.compile(rf"{firewall}/rules"), callback=self.firewall_part)
        mock.add_callback("GET", re.compile(rf"{firewall}/devices"), callback=self.firewall_part)
        mock.add_callback("POST", re.compile(rf"{firewall}/devices"), callback=self.firewall_part)
        mock.add_callback("DELETE", re.compile(rf"{firewall}(\?.*)?$"), callback=self.delete_firewall)

    @staticmethod
    def page(data: list[dict[str, Any]]) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps({"data": data, "page": 1, "pages": 1, "results": len(data)})

    def list_firewalls(self, request: Any) -> tuple[int, dict[str, str], str]:
        return self.page(list(self.firewalls.values()))

    def create_firewall(self, request: Any) -> tuple[int, dict[str, str], str]:
        firewall = {"id": 700 + len(self.firewalls), "devices": []} | payload(request)
        self.firewalls[str(firewall["id"])] = firewall
        return 200, {}, json.dumps(firewall)

    def firewall_part(self, request: Any) -> tuple[int, dict[str, str], str]:
        firewall_id, part = request.url.split("/firewalls/")[1].split("?")[0].split("/")
        firewall = self.firewalls[firewall_id]
        if request.method == "PUT":
            firewall["rules"] = payload(request)
        elif request.method == "POST":
            firewall["devices"].append({"id": len(firewall["devices"]), "entity": payload(request)})
        elif part == "devices":
            return self.page(firewall["devices"])
        return 200, {}, json.dumps(firewall[part])

    def delete_firewall(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.firewalls.pop(request.url.split("/firewalls/")[1].split("?")[0])
        return 200, {}, "{}"

    def _linode(self, body: dict[str, Any], number: int, status: str) -> dict[str, Any]:
        return {
            "id": 5000 + number,
            "label": body["label"],
            "status": status,
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

    def list(self, request: Any) -> tuple[int, dict[str, str], str]:
        data = [dict(linode, status="running") for linode in self.instances.values()]
        return 200, {}, json.dumps({"data": data, "page": 1, "pages": 1, "results": len(data)})

    def create(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = payload(request)
        self.created.append(body)
        linode = self._linode(body, len(self.created), "provisioning")
        self.instances[linode["id"]] = linode
        return 200, {}, json.dumps(linode)

    def delete(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.instances.pop(int(request.url.rsplit("/", 1)[1].split("?")[0]))
        return 200, {}, "{}"


def test_linode_validate_regions_and_sizes(http: responses.RequestsMock) -> None:
    FakeLinode(http)
    driver = LinodeDriver({"token": "good"}, {})

    driver.validate()

    assert [r.id for r in driver.regions()] == ["eu-west", "us-east"]
    [size] = driver.sizes("eu-west")
    assert (size.id, size.name, size.cpus, size.memory_mb, size.price_hourly) == (
        "g6-standard-2",
        "Linode 4GB",
        2,
        4096,
        0.036,
    )


def test_linode_rejected_token(http: responses.RequestsMock) -> None:
    http.get(f"{LINODE}/regions", status=401, json={"errors": [{"reason": "Invalid Token"}]})
    with pytest.raises(CredentialsRejected, match="Linode rejected the credentials: Invalid Token"):
        LinodeDriver({"token": "expired"}, {}).validate()


def test_linode_creates_and_destroys_a_cluster(http: responses.RequestsMock) -> None:
    fake = FakeLinode(http)
    driver = LinodeDriver({"token": "good"}, {})
    pools = [
        make_pool("general", "g6-standard-2", 1),
        make_pool("batch", "g6-standard-2", 2, labels={"x": "y"}),
    ]
    ctx = FakeContext(make_cluster("jobs", region="eu-west"), pools)
    ext = ctx.cluster.external_name

    drive(driver, ctx)

    assert sorted(i["label"] for i in fake.instances.values()) == [
        f"{ext}-batch-0",
        f"{ext}-batch-1",
        f"{ext}-general-0",
    ]
    first = fake.created[0]
    assert first["label"] == f"{ext}-general-0"  # the server comes first
    assert first["private_ip"] is True and first["tags"] == [cluster_tag(ext)]
    assert first["image"] == "linode/ubuntu24.04" and len(first["root_pass"]) > 32
    assert first["authorized_keys"][0].startswith("ssh-rsa ")
    agent_data = base64.b64decode(fake.created[1]["metadata"]["user_data"]).decode()
    agent_config = yaml.safe_load(yaml.safe_load(agent_data)["write_files"][-1]["content"])
    assert agent_config["server"] == "https://192.168.130.1:6443"
    assert agent_config["node-label"] == ["flotilla.io/pool=batch", "x=y"]
    assert ctx.endpoint == "https://198.51.100.1:6443"

    pools[1].count = 1
    drive(driver, ctx)
    assert sorted(i["label"] for i in fake.instances.values()) == [f"{ext}-batch-0", f"{ext}-general-0"]

    drive(driver, ctx, destroy=True)
    assert fake.instances == {} and fake.firewalls == {}
    assert ctx.resources() == []


# --- Vultr ---------------------------------------------------------------------------------------

VULTR = "https://api.vultr.com/v2"
NO_MORE = {"total": 1, "links": {"next": "", "prev": ""}}


def test_vultr_validate_regions_and_sizes(http: responses.RequestsMock) -> None:
    http.get(f"{VULTR}/instances", json={"instances": [], "meta": NO_MORE})
    http.get(
        f"{VULTR}/regions",
        json={
            "regions": [
                {"id": "ams", "city": "Amsterdam", "country": "NL", "continent": "Europe", "options": []}
            ],
            "meta": NO_MORE,
        },
    )
    plan = {"vcpu_count": 2, "ram": 4096, "disk": 80, "disk_count": 1, "bandwidth": 3072, "type": "vc2"}
    http.get(
        f"{VULTR}/plans",
        json={
            "plans": [
                {"id": "vc2-2c-4gb", "monthly_cost": 20, "locations": ["ams", "ewr"], **plan},
                {"id": "vc2-2c-4gb-x", "monthly_cost": 25, "locations": ["ewr"], **plan},
            ],
            "meta": NO_MORE,
        },
    )
    driver = VultrDriver({"token": "good"}, {})

    driver.validate()

    assert [(r.id, r.name) for r in driver.regions()] == [("ams", "Amsterdam (NL)")]
    [size] = driver.sizes("ams")
    assert (size.id, size.cpus, size.memory_mb, size.price_hourly) == (
        "vc2-2c-4gb",
        2,
        4096,
        round(20 / 730, 4),
    )


def test_vultr_rejected_key(http: responses.RequestsMock) -> None:
    http.get(f"{VULTR}/instances", status=401, json={"error": "Invalid API token.", "status": 401})
    with pytest.raises(CredentialsRejected, match="Vultr rejected the credentials: Invalid API token"):
        VultrDriver({"token": "bad"}, {}).validate()


# --- Google Compute Engine -----------------------------------------------------------------------

GCE = "https://www.googleapis.com/compute/v1/projects/flotilla-demo"
GOOGLE_TOKEN = "https://accounts.google.com/o/oauth2/token"


def service_account() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "flotilla-demo",
            "client_email": "flotilla@flotilla-demo.iam.gserviceaccount.com",
            "private_key": pem,
        }
    )


def gce_zone(name: str) -> dict[str, Any]:
    return {
        "id": str(abs(hash(name)) % 1000),
        "name": name,
        "status": "UP",
        "region": f"{GCE}/regions/{name[:-2]}",
    }


def test_gce_validate_regions_and_sizes(http: responses.RequestsMock) -> None:
    http.post(GOOGLE_TOKEN, json={"access_token": "ya29.fake", "token_type": "Bearer", "expires_in": 3600})
    zones = {"items": [gce_zone("europe-west1-b"), gce_zone("us-central1-a")]}
    http.get(f"{GCE}/zones", json=zones)
    http.get(f"{GCE}/zones/europe-west1-b", json=gce_zone("europe-west1-b"))
    http.get(
        f"{GCE}/regions",
        json={
            "items": [
                {"id": "1", "name": "europe-west1", "status": "UP", "zones": [f"{GCE}/zones/europe-west1-b"]}
            ]
        },
    )
    http.get(
        f"{GCE}/zones/europe-west1-b/machineTypes",
        json={
            "items": [
                {
                    "id": "77",
                    "name": "e2-standard-2",
                    "guestCpus": 2,
                    "memoryMb": 8192,
                    "zone": "europe-west1-b",
                }
            ]
        },
    )
    driver = GceDriver({"service_account_json": service_account()}, {})

    driver.validate()

    token_request = next(c.request for c in http.calls if c.request.url == GOOGLE_TOKEN)
    assert "grant_type=urn" in str(token_request.body)
    assert [r.id for r in driver.regions()] == ["europe-west1-b", "us-central1-a"]
    [size] = driver.sizes("europe-west1-b")
    assert (size.id, size.cpus, size.memory_mb) == ("e2-standard-2", 2, 8192)


def test_gce_rejected_service_account(http: responses.RequestsMock) -> None:
    http.post(
        GOOGLE_TOKEN,
        status=400,
        json={"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
    )
    with pytest.raises(
        CredentialsRejected, match="Google Compute Engine rejected the credentials: Invalid JWT Signature"
    ):
        GceDriver({"service_account_json": service_account()}, {}).validate()


def test_gce_key_that_is_not_a_service_account(http: responses.RequestsMock) -> None:
    with pytest.raises(CredentialsRejected, match="needs client_email and private_key"):
        GceDriver({"service_account_json": '{"type": "authorized_user"}'}, {}).validate()
    with pytest.raises(CredentialsRejected, match="not JSON"):
        GceDriver({"service_account_json": "/etc/flotilla/key.json"}, {}).validate()
    assert not http.calls  # nothing was sent, no file was read


# --- Azure ---------------------------------------------------------------------------------------

AZURE = "https://management.azure.com/subscriptions/sub-1"
AZURE_TOKEN = "https://login.microsoftonline.com/tenant-1/oauth2/token"
AZURE_CREDENTIALS = {
    "tenant_id": "tenant-1",
    "subscription_id": "sub-1",
    "client_id": "app-1",
    "client_secret": "s",
}


def test_azure_validate_regions_and_sizes(http: responses.RequestsMock) -> None:
    http.post(
        AZURE_TOKEN, json={"access_token": "eyJ.fake", "token_type": "Bearer", "expires_on": "4102444800"}
    )
    http.get(
        f"{AZURE}/providers/Microsoft.Compute",
        json={
            "resourceTypes": [
                {"resourceType": "disks", "locations": ["West Europe"]},
                {"resourceType": "virtualMachines", "locations": ["West Europe", "East US"]},
            ]
        },
    )
    http.get(
        f"{AZURE}/providers/Microsoft.Compute/locations/westeurope/vmSizes",
        json={
            "value": [
                {
                    "name": "Standard_B2s",
                    "numberOfCores": 2,
                    "memoryInMB": 4096,
                    "osDiskSizeInMB": 1047552,
                    "resourceDiskSizeInMB": 8192,
                    "maxDataDiskCount": 4,
                }
            ]
        },
    )
    driver = AzureDriver(AZURE_CREDENTIALS, {})

    driver.validate()

    assert [(r.id, r.name) for r in driver.regions()] == [
        ("westeurope", "West Europe"),
        ("eastus", "East US"),
    ]
    [size] = driver.sizes("westeurope")
    assert (size.id, size.cpus, size.memory_mb) == ("Standard_B2s", 2, 4096)
    assert http.calls[-1].request.headers["Authorization"] == "Bearer eyJ.fake"


def test_azure_rejected_client_secret(http: responses.RequestsMock) -> None:
    http.post(
        AZURE_TOKEN,
        status=401,
        json={
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.",
        },
    )
    with pytest.raises(CredentialsRejected, match="Azure rejected the credentials: AADSTS7000215"):
        AzureDriver(AZURE_CREDENTIALS, {}).validate()


# --- OpenStack -----------------------------------------------------------------------------------

KEYSTONE = "https://cloud.test:5000/identity"
NOVA = "https://nova.cloud.test/v2.1"
OPENSTACK_SETTINGS = {
    "auth_url": f"{KEYSTONE}/v3/",
    "username": "ops",
    "project": "flotilla",
    "image": "ubuntu-24.04",
}


def keystone_token() -> dict[str, Any]:
    return {
        "token": {
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "project": {"id": "p1", "name": "flotilla", "domain": {"id": "default", "name": "Default"}},
            "user": {"id": "u1", "name": "ops", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "member"}],
            "catalog": [
                {
                    "type": "compute",
                    "name": "nova",
                    "endpoints": [{"region": "RegionOne", "interface": "public", "url": NOVA}],
                }
            ],
        }
    }


def test_openstack_validate_regions_and_sizes(http: responses.RequestsMock, private_endpoints: None) -> None:
    http.post(
        f"{KEYSTONE}/v3/auth/tokens", status=201, json=keystone_token(), headers={"X-Subject-Token": "gAAAA"}
    )
    http.get(
        f"{NOVA}/flavors/detail",
        json={"flavors": [{"id": "2", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20, "swap": ""}]},
    )
    driver = OpenStackDriver({"password": "secret"}, OPENSTACK_SETTINGS)

    driver.validate()

    auth = payload(http.calls[0].request)["auth"]
    assert auth["identity"]["password"]["user"]["name"] == "ops"
    assert auth["scope"]["project"]["name"] == "flotilla"
    assert http.calls[1].request.headers["X-Auth-Token"] == "gAAAA"
    assert [r.id for r in driver.regions()] == ["RegionOne"]
    [size] = driver.sizes("RegionOne")
    assert (size.id, size.name, size.cpus, size.memory_mb) == ("2", "m1.small", 1, 2048)


def test_openstack_rejected_password(http: responses.RequestsMock, private_endpoints: None) -> None:
    http.post(
        f"{KEYSTONE}/v3/auth/tokens",
        status=401,
        json={
            "error": {
                "code": 401,
                "title": "Unauthorized",
                "message": "The request you have made requires authentication.",
            }
        },
    )
    with pytest.raises(CredentialsRejected, match="OpenStack rejected the credentials"):
        OpenStackDriver({"password": "wrong"}, OPENSTACK_SETTINGS).validate()
