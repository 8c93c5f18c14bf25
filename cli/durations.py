"""Parsing of the time options (`--expires`, `--expires-in`) into aware UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from cli.errors import UsageError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"(?:\d+[smhdw])+")
DURATION_EXAMPLES = "e.g. 90m, 12h, 30d, 2w, 1d12h"


def parse_duration(text: str, *, option: str) -> timedelta:
    """`30d`, `12h`, `1d12h`, ... as a timedelta; refuses zero, negatives and unknown units."""
    compact = text.strip().lower().replace(" ", "")
    if not _WHOLE.fullmatch(compact):
        raise UsageError(f"{option}: {text!r} is not a duration ({DURATION_EXAMPLES})")
    seconds = sum(int(amount) * _UNIT_SECONDS[unit] for amount, unit in _PART.findall(compact))
    if seconds <= 0:
        raise UsageError(f"{option}: the duration must be longer than zero")
    try:
        return timedelta(seconds=seconds)
    except OverflowError as exc:
        raise UsageError(f"{option}: {text!r} is too long") from exc


def parse_timestamp(text: str, *, option: str) -> datetime:
    """An ISO 8601 date-time with a time zone (`2026-12-31T00:00:00Z`), or a date (midnight UTC)."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(
            f"{option}: {text!r} is not an ISO 8601 date-time (e.g. 2026-12-31T00:00:00Z or 2026-12-31)"
        ) from exc
    if parsed.tzinfo is None:
        if len(value) == 10:  # a bare date, YYYY-MM-DD
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
        raise UsageError(f"{option}: {text!r} has no time zone; add Z for UTC or an offset such as +02:00")
    return parsed.astimezone(UTC)


def expiry(expires: str | None, expires_in: str | None, *, now: datetime | None = None) -> datetime | None:
    """The expiry chosen by `--expires` or `--expires-in` (at most one of them), or None."""
    if expires and expires_in:
        raise UsageError("give --expires or --expires-in, not both")
    if expires:
        return parse_timestamp(expires, option="--expires")
    if expires_in:
        try:
            return (now or datetime.now(UTC)) + parse_duration(expires_in, option="--expires-in")
        except OverflowError as exc:
            raise UsageError(f"--expires-in: {expires_in!r} is too long") from exc
    return None


def isoformat_z(moment: datetime) -> str:
    """An aware datetime as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds)."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
