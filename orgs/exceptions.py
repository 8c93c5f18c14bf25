"""Domain errors shared by every app; translated once per interface (API, portal, CLI)."""

from __future__ import annotations


class FlotillaError(Exception):
    """Base of every domain error: a stable code, an HTTP status, a message, optional fields."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class NotFound(FlotillaError):
    """Missing, or not visible to the caller: the two are never told apart."""

    code = "not_found"
    status = 404


class PermissionDenied(FlotillaError):
    """The caller's role does not allow the action."""

    code = "permission_denied"
    status = 403


class ValidationFailed(FlotillaError):
    """Input rejected; `fields` names each bad field and why."""

    code = "invalid"
    status = 400

    @classmethod
    def for_field(cls, field: str, reason: str) -> ValidationFailed:
        """One bad field."""
        return cls(f"{field}: {reason}", fields={field: [reason]})


class Conflict(FlotillaError):
    """The request clashes with the current state (a taken name, a duplicate)."""

    code = "conflict"
    status = 409


class QuotaExceeded(FlotillaError):
    """The org would go over a quota set by staff."""

    code = "quota_exceeded"
    status = 409


class InvalidTransition(FlotillaError):
    """A lifecycle was asked to move to a state its transition table forbids."""

    code = "invalid_transition"
    status = 409


class OrgSuspended(FlotillaError):
    """The organisation is suspended by staff: reads and writes are refused."""

    code = "org_suspended"
    status = 403


class Throttled(FlotillaError):
    """Too many attempts of something rate limited (sign-in, sign-up, founding orgs)."""

    code = "throttled"
    status = 429
