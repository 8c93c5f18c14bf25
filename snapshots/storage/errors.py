"""The storage adapter's errors: refused on save (a field to fix) or unavailable at run time."""

from __future__ import annotations

from orgs.exceptions import FlotillaError


class StorageRefused(FlotillaError):
    """A storage location's settings were refused (on save): `fields` names each bad field."""

    code = "storage_refused"
    status = 400
    retryable = False

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message, fields=fields)


class StorageUnavailable(FlotillaError):
    """The location did not answer, or refused a call, at run time.

    `field` says which of the location's settings the failure points at (endpoint, bucket,
    credentials) and `reason` is the message without the location, so that a check on save can
    turn it into a field error.
    """

    code = "storage_unavailable"
    status = 503

    def __init__(
        self, message: str, *, field: str = "endpoint", retryable: bool = True, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.field = field
        self.retryable = retryable
        self.reason = reason or message


class ObjectMissing(StorageUnavailable):
    """A key that should be in the location is not: retrying will not bring it back."""

    code = "object_missing"
    status = 404

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message, field="key", retryable=False)
        self.key = key
