"""Libcloud's failures as Flotilla's errors: the provider's own words, and whether a retry helps."""

from __future__ import annotations

import requests
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.common.linode import LinodeException, LinodeExceptionV4
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.common.vultr import VultrException

from clusters.exceptions import CredentialsRejected, ProviderError

# What libcloud raises for a provider's refusals and for network failures (parsing a
# provider's unexpected answer raises ValueError/KeyError inside libcloud).
LIBCLOUD_ERRORS = (
    LibcloudError,
    BaseHTTPError,
    VultrException,
    LinodeException,
    LinodeExceptionV4,
    requests.RequestException,
    OSError,
    ValueError,
    KeyError,
)
# Words of provider errors that no retry will fix (quotas, invalid sizes/images/parameters).
_FINAL_MARKERS = (
    "quota",
    "limitexceeded",
    "limit exceeded",
    "invalidparameter",
    "invalidami",
    "invalidinstancetype",
    "unsupported",
    "not supported",
    "invalid size",
    "invalid image",
    "does not exist",
    "unauthorizedoperation",
    "optinrequired",
)
# ...unless they say the provider is busy.
_TRANSIENT_MARKERS = (
    "requestlimitexceeded",
    "throttl",
    "rate limit",
    "insufficientinstancecapacity",
    "serviceunavailable",
    "internalerror",
    "try again",
)


def _message(exc: BaseException) -> str:
    value = getattr(exc, "value", None) or getattr(exc, "message", None) or str(exc)
    return str(value).strip() or exc.__class__.__name__


def _status(exc: BaseException) -> int:
    for attr in ("http_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    return 0


def provider_error(exc: BaseException, label: str) -> ProviderError:
    """A libcloud (or network) failure as Flotilla's error, with the provider's own words."""
    message = _message(exc)
    status = _status(exc)
    if isinstance(exc, InvalidCredsError) or status == 401:
        return CredentialsRejected(f"{label} rejected the credentials: {message}")
    lowered = message.lower().replace(" ", "") + " " + message.lower()
    busy = isinstance(exc, RateLimitReachedError) or status == 429 or status >= 500
    if busy or any(marker in lowered for marker in _TRANSIENT_MARKERS):
        retryable = True
    elif any(marker in lowered for marker in _FINAL_MARKERS) or status in (400, 403, 404, 422):
        retryable = False
    else:
        retryable = True
    return ProviderError(f"{label}: {message}", retryable=retryable)
