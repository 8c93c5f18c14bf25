"""GCE's firewall adapter against an HTTP-level fake of the Compute API's global firewalls: each
owner's rules are GCE rules of their own, and no other rule of the network is touched."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses

from clusters.providers.clouds import CloudAccount, FirewallRule, GceApi, GceFirewall, firewall_rules
from tests.clusters.cloud.test_http_providers import GCE, GOOGLE_TOKEN, gce_zone, service_account

Answer = tuple[int, dict[str, str], str]
FIREWALLS = f"{GCE}/global/firewalls"
TAG = "flotilla-jobs-0a1b2c3d"
WEB = FirewallRule("tcp", 8080, 8080, cidrs=("192.0.2.0/24",), owner="networking:7")


class FakeGceFirewalls:
    """The project's firewall rules kept in memory; every write answers a finished operation."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.rules: dict[str, dict[str, Any]] = {}
        mock.post(
            GOOGLE_TOKEN, json={"access_token": "ya29.fake", "token_type": "Bearer", "expires_in": 3600}
        )
        mock.get(f"{GCE}/zones", json={"items": [gce_zone("europe-west1-b")]})
        mock.get(f"{GCE}/zones/europe-west1-b", json=gce_zone("europe-west1-b"))
        mock.get(f"{GCE}/regions", json={"items": []})
        network = {
            "kind": "compute#network",
            "id": "5",
            "name": "default",
            "selfLink": f"{GCE}/global/networks/default",
        }
        mock.get(f"{GCE}/global/networks/default", json=network)
        mock.get(
            re.compile(rf"{GCE}/global/operations/[\w-]+"),
            json={"status": "DONE", "kind": "compute#operation"},
        )
        mock.add_callback("GET", re.compile(rf"{FIREWALLS}(\?.*)?$"), callback=self.list)
        mock.add_callback("POST", re.compile(rf"{FIREWALLS}(\?.*)?$"), callback=self.create)
        named = re.compile(rf"{FIREWALLS}/[\w-]+(\?.*)?$")
        mock.add_callback("GET", named, callback=self.get)
        mock.add_callback("PUT", named, callback=self.update)
        mock.add_callback("DELETE", named, callback=self.delete)

    @staticmethod
    def name_of(request: Any) -> str:
        return str(urlsplit(request.url).path.rsplit("/", 1)[1])

    @staticmethod
    def done() -> Answer:
        return (
            200,
            {},
            json.dumps(
                {"kind": "compute#operation", "status": "DONE", "selfLink": f"{GCE}/global/operations/op-1"}
            ),
        )

    def firewall(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "kind": "compute#firewall",
            "id": str(len(self.rules) + 1),
            "selfLink": f"{FIREWALLS}/{body['name']}",
            "network": f"{GCE}/global/networks/default",
            "direction": "INGRESS",
            "priority": 1000,
            "creationTimestamp": "2026-11-25T10:00:00Z",
            **body,
        }

    def list(self, request: Any) -> Answer:
        return 200, {}, json.dumps({"items": list(self.rules.values())})

    def get(self, request: Any) -> Answer:
        found = self.rules.get(self.name_of(request))
        if found is None:
            return (
                404,
                {},
                json.dumps(
                    {
                        "error": {
                            "code": 404,
                            "errors": [{"reason": "notFound", "message": "not found"}],
                            "message": "not found",
                        }
                    }
                ),
            )
        return 200, {}, json.dumps(found)

    def create(self, request: Any) -> Answer:
        body = json.loads(request.body)
        if body["name"] in self.rules:
            return (
                409,
                {},
                json.dumps(
                    {
                        "error": {
                            "code": 409,
                            "errors": [{"reason": "alreadyExists", "message": "exists"}],
                            "message": "exists",
                        }
                    }
                ),
            )
        self.rules[body["name"]] = self.firewall(body)
        return self.done()

    def update(self, request: Any) -> Answer:
        body = json.loads(request.body)
        self.rules[self.name_of(request)] = self.firewall(body)
        return self.done()

    def delete(self, request: Any) -> Answer:
        self.rules.pop(self.name_of(request), None)
        return self.done()


@pytest.fixture
def fake() -> Iterator[FakeGceFirewalls]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeGceFirewalls(mock)


def gce_firewall() -> GceFirewall:
    account = CloudAccount({"service_account_json": service_account()}, {}, region="europe-west1-b")
    return GceFirewall(GceApi(account))


def test_each_owner_gets_rules_of_its_own_and_others_are_left_alone(fake: FakeGceFirewalls) -> None:
    firewall = gce_firewall()
    names = firewall.names(TAG)
    for name in names:
        firewall.ensure(name, firewall_rules(("0.0.0.0/0",)), TAG)
    fake.rules["office-ssh"] = fake.firewall(
        {
            "name": "office-ssh",
            "sourceRanges": ["198.51.100.7/32"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
        }
    )
    api = f"{TAG}-api"

    assert firewall.apply(api, api, TAG, "networking:7", [WEB], [])

    assert sorted(fake.rules) == sorted([*names, "office-ssh", f"{TAG}-networking-7-0"])
    contributed = fake.rules[f"{TAG}-networking-7-0"]
    assert contributed["sourceRanges"] == ["192.0.2.0/24"]
    assert contributed["allowed"] == [{"IPProtocol": "tcp", "ports": ["8080"]}]
    assert contributed["targetTags"] == [TAG]
    assert not firewall.apply(api, api, TAG, "networking:7", [WEB], [])  # nothing to change

    wider = FirewallRule("tcp", 8080, 8081, cidrs=("192.0.2.0/23",), owner="networking:7")
    assert firewall.apply(api, api, TAG, "networking:7", [wider], [])

    updated = fake.rules[f"{TAG}-networking-7-0"]
    assert updated["sourceRanges"] == ["192.0.2.0/23"]
    assert updated["allowed"] == [{"IPProtocol": "tcp", "ports": ["8080-8081"]}]

    assert firewall.apply(api, api, TAG, "networking:7", [], [])

    assert sorted(fake.rules) == sorted([*names, "office-ssh"])

    firewall.apply(api, api, TAG, "networking:7", [WEB], [])
    for name in names:
        firewall.delete(name, name)

    assert sorted(fake.rules) == ["office-ssh"]
