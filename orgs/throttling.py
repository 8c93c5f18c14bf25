"""Fixed-window rate limits on the shared cache (so they hold across web processes)."""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache

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
