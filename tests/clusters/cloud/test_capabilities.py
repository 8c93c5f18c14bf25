"""What each provider declares it can do, and the typed records of cloud resources."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from clusters.models import CloudResource
from clusters.providers.capabilities import Capability
from clusters.providers.cloud import CLOUD_DRIVERS, LinodeDriver
from clusters.providers.clouds import CloudApi, Firewall
from clusters.providers.records import BadRecord, FirewallRecord, VmRecord
from clusters.providers.registry import driver_classes
from orgs.models import Organization
from tests.factories import owner_of


def test_every_cloud_declares_compute_and_firewall_and_nothing_it_does_not_implement() -> None:
    for kind, driver_class in CLOUD_DRIVERS.items():
        assert driver_class.capabilities == ("compute", "firewall"), kind
    assert driver_classes()["existing"].capabilities == ()


def test_a_capability_is_an_adapter_built_from_the_one_account_or_none() -> None:
    driver = LinodeDriver({"token": "t0ken"}, {"region": "eu-west"})

    compute = driver.capability(Capability.COMPUTE)
    firewall = driver.capability("firewall")

    assert isinstance(compute, CloudApi) and isinstance(firewall, Firewall)
    assert compute.credential("token") == "t0ken" and compute.region == "eu-west"
    assert firewall.vms.account == compute.account
    for name in ("load_balancer", "dns", "volumes", "object_storage"):
        assert driver.capability(name) is None
    with pytest.raises(ValueError):
        driver.capability("teleporter")


def test_a_vm_record_round_trips_through_the_json_column() -> None:
    record = VmRecord(role="server", index=0, version="1.36.1", nonce="ab12").created(1700000000.5)

    assert VmRecord.from_data(record.to_data()) == record
    assert record.to_data() == {
        "role": "server",
        "index": 0,
        "version": "1.36.1",
        "nonce": "ab12",
        "created_at": 1700000000.5,
    }
    assert FirewallRecord.from_data({"owners": ["cluster", "networking:7"]}).owners == (
        "cluster",
        "networking:7",
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"role": "server", "index": "0", "version": "1.36.1"}, "index must be a whole number"),
        ({"role": "boss", "index": 0, "version": "1.36.1"}, "role must be 'server' or 'agent'"),
        ({"role": "agent", "index": 1, "version": "1.36.1", "colour": "red"}, "unknown fields: colour"),
        ({"role": "agent", "index": 1}, "missing 1 required positional argument: 'version'"),
        ({"role": "agent", "index": 1, "version": 136}, "version must be text"),
    ],
)
def test_a_bad_stored_vm_record_is_refused_with_a_clear_error(data: dict[str, object], problem: str) -> None:
    resource = CloudResource(kind="vm", name="web-general-0", data=data)

    with pytest.raises(BadRecord, match=problem) as refused:
        VmRecord.from_data(resource)

    assert "web-general-0" in str(refused.value) and refused.value.retryable is False


def test_a_firewall_record_with_a_bad_owner_is_refused() -> None:
    with pytest.raises(BadRecord, match="owners must look like"):
        FirewallRecord.from_data({"owners": ["Not An Owner"]})


def test_the_api_lists_each_kinds_capabilities(client_a: APIClient) -> None:
    kinds = {k["kind"]: k for k in client_a.get("/api/v1/clusters/providers/kinds/").json()}

    assert kinds["linode"]["capabilities"] == ["compute", "firewall"]
    assert kinds["ec2"]["capabilities"] == ["compute", "firewall"]
    assert kinds["existing"]["capabilities"] == []


def test_the_provider_page_shows_each_kinds_capabilities(org_a: Organization) -> None:
    client = Client()
    client.force_login(owner_of(org_a).user)

    page = client.get("/o/alpha/clusters/providers/").content.decode()

    row = re.search(r'<tr data-kind="Linode">(.*?)</tr>', page, re.S)
    assert row is not None
    assert re.findall(r'data-capability="(\w+)"', row.group(1)) == ["compute", "firewall"]
