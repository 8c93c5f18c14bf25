"""The `--pool` syntax of `flotilla clusters create` and `add-pool`, read into the API's node pool."""

from __future__ import annotations

from cli.client import JsonObject
from cli.errors import UsageError

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
POOL_KEYS = ("name", "size", "count", "labels", "taints")
POOL_SYNTAX = "name=NAME,size=SIZE,count=N[,labels=k:v;k2:v2][,taints=key=value:NoSchedule;key2:NoExecute]"


def parse_pool(spec: str) -> JsonObject:
    """`name=web,size=small,count=3[,labels=a:b;c:d][,taints=key=value:NoSchedule]` as the API's pool."""
    values: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            raise _pool_error(spec, f"{part.strip()!r} is not key=value")
        if key not in POOL_KEYS:
            raise _pool_error(spec, f"unknown key {key!r} (known: {', '.join(POOL_KEYS)})")
        if key in values:
            raise _pool_error(spec, f"{key} is given twice")
        values[key] = value.strip()
    for required in ("name", "size", "count"):
        if not values.get(required):
            raise _pool_error(spec, f"{required} is missing")
    count = values["count"]
    if not (count.isascii() and count.isdigit()):
        raise _pool_error(spec, f"count must be a whole number, not {count!r}")
    return {
        "name": values["name"],
        "size": values["size"],
        "count": int(count),
        "labels": _parse_labels(spec, values.get("labels", "")),
        "taints": _parse_taints(spec, values.get("taints", "")),
    }


def _parse_labels(spec: str, text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in filter(None, (chunk.strip() for chunk in text.split(";"))):
        # Label keys and values never contain ':' or '=', so either separates them.
        cut = min((i for i in (item.find(":"), item.find("=")) if i >= 0), default=-1)
        if cut <= 0:
            raise _pool_error(spec, f"label {item!r} is not key:value")
        labels[item[:cut].strip()] = item[cut + 1 :].strip()
    return labels


def _parse_taints(spec: str, text: str) -> list[dict[str, str]]:
    taints: list[dict[str, str]] = []
    for item in filter(None, (chunk.strip() for chunk in text.split(";"))):
        rest, sep, effect = item.rpartition(":")
        if not sep:
            rest, effect = item, "NoSchedule"
        if effect not in TAINT_EFFECTS:
            raise _pool_error(spec, f"taint {item!r}: the effect must be one of {', '.join(TAINT_EFFECTS)}")
        key, _, value = rest.partition("=")
        if not key.strip():
            raise _pool_error(spec, f"taint {item!r} has no key")
        taints.append({"key": key.strip(), "value": value.strip(), "effect": effect})
    return taints


def _pool_error(spec: str, reason: str) -> UsageError:
    return UsageError(f"--pool {spec!r}: {reason}", hint=f"--pool {POOL_SYNTAX}")
