"""Provider URLs under the outbound policy (normal settings, no FLOTILLA_CLOUD_PRIVATE_ENDPOINTS):
OpenStack's service catalogue is checked before libcloud uses it, and no driver follows a
redirect. HTTP-level fakes (responses): nothing leaves this machine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.test import override_settings

from clusters.exceptions import ProviderError
from clusters.providers.cloud import DigitalOceanDriver, OpenStackDriver

# The operator allows the tenant's Keystone (a private cloud), and only that address.
KEYSTONE = "https://10.1.2.3:5000/identity"
ALLOW = override_settings(FLOTILLA_OUTBOUND_ALLOW=["10.1.2.3/32"])
SETTINGS = {"auth_url": f"{KEYSTONE}/v3/", "username": "ops", "project": "p", "image": "ubuntu"}
FLAVORS = {"flavors": [{"id": "2", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20, "swap": ""}]}


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def token_with_compute_at(url: str) -> dict[str, Any]:
    return {
        "token": {
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "project": {"id": "p1", "name": "p", "domain": {"id": "default", "name": "Default"}},
            "user": {"id": "u1", "name": "ops", "domain": {"id": "default", "name": "Default"}},
            "roles": [],
            "catalog": [
                {
                    "type": "compute",
                    "name": "nova",
                    "endpoints": [{"region": "RegionOne", "interface": "public", "url": url}],
                }
            ],
        }
    }


@pytest.mark.parametrize(
    ("nova", "says"),
    [
        ("https://169.254.169.254/v2.1", "link-local"),
        ("https://127.0.0.1:8774/v2.1", "loopback"),
        ("https://10.9.9.9:8774/v2.1", "private"),
    ],
)
def test_a_catalogue_endpoint_inside_the_flotilla_network_is_refused(
    http: responses.RequestsMock, nova: str, says: str
) -> None:
    http.post(
        f"{KEYSTONE}/v3/auth/tokens",
        status=201,
        json=token_with_compute_at(nova),
        headers={"X-Subject-Token": "t"},
    )
    inside = http.get(f"{nova}/flavors/detail", json=FLAVORS)
    with (
        ALLOW,
        pytest.raises(ProviderError, match=f"OpenStack service catalogue points at .*{says}") as refused,
    ):
        OpenStackDriver({"password": "s"}, SETTINGS).validate()
    assert refused.value.retryable is False and "auth_url" in refused.value.fields
    assert inside.call_count == 0


def test_an_allowed_catalogue_endpoint_is_used(http: responses.RequestsMock) -> None:
    nova = "https://10.1.2.3:8774/v2.1"
    http.post(
        f"{KEYSTONE}/v3/auth/tokens",
        status=201,
        json=token_with_compute_at(nova),
        headers={"X-Subject-Token": "t"},
    )
    flavors = http.get(f"{nova}/flavors/detail", json=FLAVORS)
    with ALLOW:
        OpenStackDriver({"password": "s"}, SETTINGS).validate()
    assert flavors.call_count == 1


def test_the_auth_url_is_checked_on_save(http: responses.RequestsMock) -> None:
    # Without the operator's allow-list the same private Keystone is refused before any request.
    with pytest.raises(ProviderError, match=r"auth_url: .*10\.1\.2\.3, a private address") as refused:
        OpenStackDriver({"password": "s"}, SETTINGS).validate()
    assert refused.value.fields.keys() == {"auth_url"}
    assert len(http.calls) == 0


def test_a_redirect_from_a_provider_is_not_followed(http: responses.RequestsMock) -> None:
    metadata = "http://169.254.169.254/latest/meta-data/"
    http.get("https://api.digitalocean.com/v2/regions", status=302, headers={"Location": metadata})
    followed = http.get(metadata, json={"regions": [], "links": {}})
    with pytest.raises(ProviderError):
        DigitalOceanDriver({"token": "t"}, {}).regions()
    assert followed.call_count == 0
