"""Domain errors of the clusters app (translated once per interface like every FlotillaError)."""

from __future__ import annotations

from orgs.exceptions import Conflict, FlotillaError, QuotaExceeded, ValidationFailed

__all__ = ["Conflict", "OperationInProgress", "ProviderError", "QuotaExceeded", "ValidationFailed"]


class ProviderError(FlotillaError):
    """A provider refused or failed a call; the message carries the provider's own words."""

    code = "provider_error"
    status = 502

    def __init__(
        self, message: str, *, retryable: bool = True, fields: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message, fields=fields)
        self.retryable = retryable


class CredentialsRejected(ProviderError):
    """The provider refused the credentials: a client error, never retried."""

    code = "credentials_rejected"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, fields={"credentials": [message]})


class OperationInProgress(Conflict):
    """Another operation on the cluster has not finished."""

    code = "operation_in_progress"
