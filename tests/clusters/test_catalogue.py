"""Provider catalogues are read once per TTL (per account, per org) and can be refreshed.

The cloud is DigitalOcean's API faked at the HTTP level (`responses`): the calls it answers are
the calls Flotilla made to the provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.test import Client
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from clusters.models import ProviderAccount
from clusters.services import providers as provider_services
from orgs.audit.models import AuditEntry
from orgs.choices import Role
from orgs.models import Organization
from tests.clusters.helpers import owner_actor
from tests.factories import add_member, make_token, owner_of

pytestmark = pytest.mark.django_db

DO = "https://api.digitalocean.com/v2"
# Each org's token sees its own regions, so a catalogue served to the wrong org shows.
REGIONS = {"dop_v1_alpha": ("ams3", "Amsterdam 3"), "dop_v1_bravo": ("sfo3", "San Francisco 3")}
SIZES = {
    "sizes": [
        {
            "slug": "s-2vcpu-4gb",
            "memory": 4096,
            "vcpus": 2,
            "disk": 80,
            "transfer": 4.0,
            "price_monthly": 24.0,
            "price_hourly": 0.0357,
            "regions": ["ams3", "sfo3"],
        }
    ],
    "links": {},
}


class FakeCloud:
    """DigitalOcean's regions and sizes, answering by the caller's token; counts the calls."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.calls: list[tuple[str, str]] = []
        mock.add_callback("GET", f"{DO}/regions", callback=self.regions)
        mock.add_callback("GET", f"{DO}/sizes", callback=self.sizes)

    def _token(self, request: Any) -> str:
        return str(request.headers["Authorization"]).removeprefix("Bearer ")

    def regions(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.calls.append(("regions", self._token(request)))
        slug, name = REGIONS[self._token(request)]
        body = {"regions": [{"slug": slug, "name": name, "available": True, "features": []}], "links": {}}
        return 200, {}, json.dumps(body)

    def sizes(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.calls.append(("sizes", self._token(request)))
        return 200, {}, json.dumps(SIZES)

    def count(self, what: str, token: str) -> int:
        return self.calls.count((what, token))


@pytest.fixture
def cloud() -> Iterator[FakeCloud]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeCloud(mock)


def connect(org: Organization, token: str) -> ProviderAccount:
    """A DigitalOcean account, connected through the service (its check is one regions call)."""
    with schema_context(org.schema_name):
        return provider_services.create_provider_account(
            owner_actor(org), name="do", kind="digitalocean", fields={"token": token}
        )


def portal(org: Organization, role: Role | None = None) -> Client:
    client = Client()
    client.force_login(owner_of(org).user if role is None else add_member(org, role).user)
    return client


def api(org: Organization) -> APIClient:
    _, clear = make_token(owner_of(org))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {clear}")
    return client


def test_two_page_loads_ask_the_cloud_once(org_a: Organization, cloud: FakeCloud) -> None:
    account = connect(org_a, "dop_v1_alpha")
    checked = cloud.count("regions", "dop_v1_alpha")
    client = portal(org_a)
    for _ in range(2):
        page = client.get("/o/alpha/clusters/new/", {"provider": account.pk}).content.decode()
        assert "Amsterdam 3 (ams3)" in page and "s-2vcpu-4gb" in page
    assert cloud.count("regions", "dop_v1_alpha") == checked + 1
    assert cloud.count("sizes", "dop_v1_alpha") == 1
    # The API's catalogue is the same cached read.
    body = api(org_a).get(f"/api/v1/clusters/providers/{account.pk}/catalogue/").json()
    assert body["regions"] == [{"id": "ams3", "name": "Amsterdam 3"}]
    assert cloud.count("regions", "dop_v1_alpha") == checked + 1
    assert cloud.count("sizes", "dop_v1_alpha") == 1


def test_an_org_never_gets_another_orgs_catalogue(
    org_a: Organization, org_b: Organization, cloud: FakeCloud
) -> None:
    account_a, account_b = connect(org_a, "dop_v1_alpha"), connect(org_b, "dop_v1_bravo")
    # Each org's first account: the same id in two schemas, so only the schema tells them apart.
    assert account_a.pk == account_b.pk
    assert "Amsterdam 3" in portal(org_a).get("/o/alpha/clusters/new/").content.decode()
    page_b = portal(org_b).get("/o/bravo/clusters/new/").content.decode()
    assert "San Francisco 3 (sfo3)" in page_b and "Amsterdam" not in page_b
    body = api(org_b).get(f"/api/v1/clusters/providers/{account_b.pk}/catalogue/").json()
    assert body["regions"] == [{"id": "sfo3", "name": "San Francisco 3"}]


def test_new_credentials_read_the_catalogue_again(org_a: Organization, cloud: FakeCloud) -> None:
    account = connect(org_a, "dop_v1_alpha")
    client = portal(org_a)
    client.get("/o/alpha/clusters/new/")
    with schema_context(org_a.schema_name):
        provider_services.update_provider_credentials(
            owner_actor(org_a), account, fields={"token": "dop_v1_bravo"}
        )
    assert "San Francisco 3" in client.get("/o/alpha/clusters/new/").content.decode()


def test_refresh_from_the_api_asks_the_cloud_again(org_a: Organization, cloud: FakeCloud) -> None:
    account = connect(org_a, "dop_v1_alpha")
    client = api(org_a)
    url = f"/api/v1/clusters/providers/{account.pk}/"
    client.get(url + "catalogue/")
    client.get(url + "catalogue/")
    before = cloud.count("regions", "dop_v1_alpha"), cloud.count("sizes", "dop_v1_alpha")
    response = client.post(url + "refresh-catalogue/")
    assert response.status_code == 200, response.content
    assert response.json()["regions"] == [{"id": "ams3", "name": "Amsterdam 3"}]
    after = cloud.count("regions", "dop_v1_alpha"), cloud.count("sizes", "dop_v1_alpha")
    assert after == (before[0] + 1, before[1] + 1)
    # ...and what it read is what the next page shows, without another call.
    client.get(url + "catalogue/")
    assert (cloud.count("regions", "dop_v1_alpha"), cloud.count("sizes", "dop_v1_alpha")) == after
    with schema_context(org_a.schema_name):
        entry = AuditEntry.objects.get(action="provider.catalogue_refreshed")
    assert entry.object_id == str(account.pk) and (entry.after or {}).get("regions") == 1


def test_refresh_button_on_the_provider_page(org_a: Organization, cloud: FakeCloud) -> None:
    account = connect(org_a, "dop_v1_alpha")
    viewer = portal(org_a, Role.VIEWER)
    page = viewer.get("/o/alpha/clusters/providers/").content.decode()
    action = f'action="/o/alpha/clusters/providers/{account.pk}/refresh-catalogue/"'
    assert action in page
    viewer.get("/o/alpha/clusters/new/")  # viewers cannot create: nothing read
    before = cloud.count("regions", "dop_v1_alpha")
    response = viewer.post(f"/o/alpha/clusters/providers/{account.pk}/refresh-catalogue/", follow=True)
    assert response.status_code == 200
    assert "Read the catalogue of do again: 1 region(s)" in response.content.decode()
    assert cloud.count("regions", "dop_v1_alpha") == before + 1


def test_another_org_cannot_refresh_an_account(
    org_a: Organization, org_b: Organization, cloud: FakeCloud
) -> None:
    account = connect(org_a, "dop_v1_alpha")
    before = len(cloud.calls)
    assert api(org_b).post(f"/api/v1/clusters/providers/{account.pk}/refresh-catalogue/").status_code == 404
    assert (
        portal(org_b).post(f"/o/bravo/clusters/providers/{account.pk}/refresh-catalogue/").status_code == 404
    )
    assert len(cloud.calls) == before


def test_the_refresh_action_is_in_the_openapi_schema() -> None:
    schema = json.loads(APIClient().get("/api/schema/?format=json").content)
    operation = schema["paths"]["/api/v1/clusters/providers/{id}/refresh-catalogue/"]["post"]
    assert "requestBody" not in operation
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Catalogue"
    )
