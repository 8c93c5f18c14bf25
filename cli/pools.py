"""The `--pool` syntax of `flotilla clusters create` and `add-pool`, read into the API's node pool.

Labels and taints use the portal's syntax (cli.labels, docs/cli.md): items separated by "," or
";". Inside `--pool`, a comma that is not followed by one of the pool's own keys (`name=`,
`size=`, `count=`, `labels=`, `taints=`) continues the labels or taints before it, so
`labels=tier=web,team=shop` means what it says in the portal.
"""

from __future__ import annotations

from cli.client import JsonObject
from cli.errors import UsageError
from cli.labels import LabelSyntaxError, parse_labels, parse_taints

POOL_KEYS = ("name", "size", "count", "labels", "taints")
# Keys whose values are lists that may themselves hold commas.
_LIST_KEYS = ("labels", "taints")
POOL_SYNTAX = "name=NAME,size=SIZE,count=N[,labels=k=v;k2=v2][,taints=key=value:NoSchedule;key2:NoExecute]"


def parse_pool(spec: str) -> JsonObject:
    """`name=web,size=small,count=3[,labels=a=b;c=d][,taints=key=value:NoSchedule]` as the API's pool."""
    values: dict[str, str] = {}
    current = ""
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if key not in POOL_KEYS and current in _LIST_KEYS:
            values[current] += "," + part
            continue
        if not sep:
            raise _pool_error(spec, f"{part.strip()!r} is not key=value")
        if key not in POOL_KEYS:
            raise _pool_error(spec, f"unknown key {key!r} (known: {', '.join(POOL_KEYS)})")
        if key in values:
            raise _pool_error(spec, f"{key} is given twice")
        values[key] = value
        current = key
    values = {key: value.strip() for key, value in values.items()}
    for required in ("name", "size", "count"):
        if not values.get(required):
            raise _pool_error(spec, f"{required} is missing")
    count = values["count"]
    if not (count.isascii() and count.isdigit()):
        raise _pool_error(spec, f"count must be a whole number, not {count!r}")
    try:
        labels = parse_labels(values.get("labels", ""))
    except LabelSyntaxError as exc:
        raise _pool_error(spec, f"labels: {exc}") from exc
    try:
        taints = parse_taints(values.get("taints", ""))
    except LabelSyntaxError as exc:
        raise _pool_error(spec, f"taints: {exc}") from exc
    return {
        "name": values["name"],
        "size": values["size"],
        "count": int(count),
        "labels": labels,
        "taints": taints,
    }


def _pool_error(spec: str, reason: str) -> UsageError:
    return UsageError(f"--pool {spec!r}: {reason}", hint=f"--pool {POOL_SYNTAX}")
