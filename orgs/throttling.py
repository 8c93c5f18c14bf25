"""Fixed-window rate limits on the shared cache (so they hold across web processes)."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache

from orgs.exceptions import Throttled
from orgs.models import normalise_email

_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}


def parse_rate(rate: str) -> tuple[int, int]:
    """'10/min' -> (10, 60)."""
    count, _, unit = rate.partition("/")
    return int(count), _UNITS[unit]


def allow(scope: str, key: str, rate: str) -> bool:
    """Count one hit for (scope, key); False once the window's budget is spent."""
    limit, window = parse_rate(rate)
    bucket = int(time.time() // window)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    cache_key = f"ratelimit:{scope}:{digest}:{bucket}"
    if cache.add(cache_key, 1, timeout=window + 1):
        return True
    try:
        hits = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=window + 1)
        return True
    return hits <= limit


def _one_window(rate: str) -> str:
    # How long a caller waits, at most, for the window to pass: "a minute", "an hour".
    seconds = parse_rate(rate)[1]
    return {1: "a second", 60: "a minute", 3600: "an hour"}.get(seconds, f"{seconds} seconds")


def signin_allowed(ip: str | None, email: str) -> bool:
    """Count one sign-in attempt (portal or admin) against the email's and the address's budgets.

    The email is normalised as accounts store it, so spaces and case do not make a fresh
    budget; both budgets are always counted, so alternating emails does not save an address's.
    """
    by_email = allow("signin.email", normalise_email(email), settings.SIGNIN_RATE)
    by_address = allow("signin.ip", ip or "unknown", settings.SIGNIN_IP_RATE)
    return by_email and by_address


def signin_refusal() -> str:
    """What a throttled sign-in is told."""
    return f"Too many sign-in attempts. Wait {_one_window(settings.SIGNIN_RATE)} and try again."


def require_signup_allowance(ip: str | None) -> None:
    """Count one sign-up from the client address; Throttled once its budget is spent.

    Each sign-up creates a PostgreSQL schema, so a script must not be able to make thousands.
    """
    if not allow("signup", ip or "unknown", settings.SIGNUP_RATE):
        raise Throttled(
            f"Too many sign-ups from your address. Wait {_one_window(settings.SIGNUP_RATE)} and try again."
        )


def require_org_creation_allowance(user_id: int) -> None:
    """Count one organisation founded by the user; Throttled once their budget is spent."""
    if not allow("org_create", str(user_id), settings.ORG_CREATE_RATE):
        raise Throttled(
            "You have created too many organisations recently. "
            f"Wait {_one_window(settings.ORG_CREATE_RATE)} and try again."
        )
