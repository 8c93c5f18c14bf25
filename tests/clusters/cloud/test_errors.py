"""How provider failures, endpoints and API address ranges are judged (no provider needed)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.common.types import InvalidCredsError, MalformedResponseError

from clusters.exceptions import CredentialsRejected, ProviderError
from clusters.providers.cloud import Ec2Driver, OpenStackDriver
from clusters.providers.cloud_errors import provider_error
from clusters.providers.clouds import checked_endpoint


def http_error(code: int, message: str) -> Exception:
    """What libcloud raises for a provider's HTTP error answer."""
    return BaseHTTPError(code, message)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (http_error(400, "VcpuLimitExceeded: You have requested more vCPU capacity than allowed"), False),
        (http_error(400, "InvalidParameterValue: Invalid value 'x9.huge' for InstanceType"), False),
        (http_error(422, "The size you requested is not available in this region"), False),
        (
            http_error(403, "UnauthorizedOperation: You are not authorized to perform this operation"),
            False,
        ),
        (http_error(400, "RequestLimitExceeded: Request limit exceeded."), True),
        (http_error(500, "InsufficientInstanceCapacity: try again later"), True),
        (http_error(503, "Service Unavailable"), True),
        (RateLimitReachedError(), True),  # type: ignore[no-untyped-call]
        (MalformedResponseError("Failed to parse XML"), True),
        (ConnectionResetError("connection reset by peer"), True),
    ],
)
def test_provider_errors_carry_the_provider_words_and_whether_a_retry_helps(
    error: Exception, retryable: bool
) -> None:
    translated = provider_error(error, "AWS EC2")
    assert type(translated) is ProviderError
    assert translated.retryable is retryable
    assert translated.message.startswith("AWS EC2: ")


def test_refused_credentials_are_a_client_error_never_retried() -> None:
    for error in (
        InvalidCredsError("AuthFailure: bad key"),
        http_error(401, "Unable to authenticate you"),
    ):
        translated = provider_error(error, "DigitalOcean")
        assert isinstance(translated, CredentialsRejected)
        assert translated.retryable is False
        assert translated.status == 400
        assert "DigitalOcean rejected the credentials" in translated.message


def test_endpoints_inside_the_flotilla_network_need_the_operator_s_consent() -> None:
    for url in ("http://127.0.0.1:5000", "http://10.0.0.8/", "https://[::1]:8443", "http://169.254.169.254"):
        with pytest.raises(ProviderError, match="Flotilla does not connect there") as refused:
            checked_endpoint(url, "endpoint")
        assert refused.value.retryable is False
        assert "endpoint" in refused.value.fields
    with override_settings(FLOTILLA_CLOUD_PRIVATE_ENDPOINTS=True):
        assert checked_endpoint("http://127.0.0.1:5000", "endpoint").port == 5000
    with override_settings(FLOTILLA_OUTBOUND_ALLOW=["127.0.0.1:5000"]):
        assert checked_endpoint("http://127.0.0.1:5000/", "endpoint").port == 5000
    with pytest.raises(ProviderError, match="https://"):
        checked_endpoint("http://8.8.8.8/", "endpoint")
    with pytest.raises(ProviderError, match="query or a fragment"):
        checked_endpoint("https://8.8.8.8/?x=1", "endpoint")


def test_an_endpoint_must_be_a_url() -> None:
    with pytest.raises(ProviderError, match="not an http"):
        checked_endpoint("ftp://example.invalid/", "auth_url")
    with pytest.raises(ProviderError, match="not an http"):
        Ec2Driver({"access_key_id": "a", "secret_access_key": "b"}, {"endpoint": "localhost"}).validate()


def test_a_private_endpoint_is_refused_before_any_request() -> None:
    driver = OpenStackDriver(
        {"password": "p"},
        {"auth_url": "http://127.0.0.1:5000", "username": "u", "project": "x", "image": "i"},
    )
    with pytest.raises(
        ProviderError, match=r"auth_url: the auth_url URL points at 127\.0\.0\.1, a loopback address"
    ):
        driver.validate()


def test_missing_settings_name_the_field() -> None:
    with pytest.raises(ProviderError, match="token is required") as missing:
        from clusters.providers.cloud import DigitalOceanDriver

        DigitalOceanDriver({}, {}).validate()
    assert missing.value.fields == {"token": ["This field is required."]}


def test_api_address_ranges_are_checked() -> None:
    driver = Ec2Driver({}, {"api_cidrs": "203.0.113.0/24, 198.51.100.7"})
    assert driver._api_cidrs() == ("203.0.113.0/24", "198.51.100.7/32")
    with pytest.raises(ProviderError, match="api_cidrs") as invalid:
        Ec2Driver({}, {"api_cidrs": ["203.0.113.0/24", "not-a-network"]})._api_cidrs()
    assert invalid.value.fields and "api_cidrs" in invalid.value.fields
