"""Checks of a cluster's requested spec: names, pools, labels, taints, sizes, versions, regions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from clusters import versions
from clusters.exceptions import ProviderError
from clusters.providers.base import ProviderDriver
from clusters.versions import KubeVersion
from orgs.exceptions import ValidationFailed

CLUSTER_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
POOL_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$")
_LABEL_NAME = r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?"
# \Z, not $: "$" also matches before a trailing newline.
# A key's prefix is a DNS subdomain (RFC 1123, at most 253 characters), as Kubernetes checks it.
_DNS_SUBDOMAIN = r"(?=[a-z0-9.-]{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL_KEY_RE = re.compile(rf"^({_DNS_SUBDOMAIN}/)?{_LABEL_NAME}\Z")
LABEL_VALUE_RE = re.compile(rf"^({_LABEL_NAME})?\Z")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
MAX_POOL_NODES = 100
MAX_POOLS = 10


@dataclass(frozen=True)
class PoolInput:
    """A checked pool request."""

    name: str
    size: str
    count: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)


def check_cluster_name(name: str, field_name: str = "name") -> str:
    """A DNS-label name of at most 40 characters."""
    name = (name or "").strip()
    if not CLUSTER_NAME_RE.match(name):
        raise ValidationFailed.for_field(
            field_name, "Use 1-40 lowercase letters, digits and hyphens, starting with a letter."
        )
    return name


def check_count(value: Any, field_name: str, *, minimum: int = 1) -> int:
    """A node count within bounds."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationFailed.for_field(field_name, "Give a whole number.")
    try:
        count = int(value)
    except ValueError as exc:
        raise ValidationFailed.for_field(field_name, "Give a whole number.") from exc
    if not minimum <= count <= MAX_POOL_NODES:
        raise ValidationFailed.for_field(field_name, f"Give a number from {minimum} to {MAX_POOL_NODES}.")
    return count


# The rules of Kubernetes label keys and values, as field errors say them.
KEY_RULE = (
    "an optional DNS-name prefix and '/', then at most 63 letters, digits, '-', '_' or '.', "
    "beginning and ending with a letter or digit"
)
VALUE_RULE = (
    "at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit, or empty"
)
RESERVED_PREFIX = "flotilla.io/"


def check_labels(labels: Any, field_name: str) -> dict[str, str]:
    """Kubernetes label keys and values."""
    if labels in (None, ""):
        return {}
    if not isinstance(labels, dict):
        raise ValidationFailed.for_field(field_name, "Give labels as a mapping of key to value.")
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY_RE.match(key):
            raise ValidationFailed.for_field(
                field_name, f"{key!r} is not a label key you can set: {KEY_RULE}."
            )
        if key.startswith(RESERVED_PREFIX):
            raise ValidationFailed.for_field(
                field_name, f"{key!r} is not a label key you can set: {RESERVED_PREFIX} keys are Flotilla's."
            )
        if not isinstance(value, str) or not LABEL_VALUE_RE.match(value):
            raise ValidationFailed.for_field(
                field_name, f"{value!r} is not a valid label value (for {key}): {VALUE_RULE}."
            )
    return {str(k): str(v) for k, v in labels.items()}


def check_taints(taints: Any, field_name: str) -> list[dict[str, str]]:
    """Taints as {key, value, effect}; one taint per key and effect, as Kubernetes requires."""
    if taints in (None, ""):
        return []
    if not isinstance(taints, list):
        raise ValidationFailed.for_field(field_name, "Give taints as a list of {key, value, effect}.")
    result: list[dict[str, str]] = []
    for taint in taints:
        if not isinstance(taint, dict):
            raise ValidationFailed.for_field(field_name, f"{taint!r} is not a {{key, value, effect}} taint.")
        key = str(taint.get("key", ""))
        if not LABEL_KEY_RE.match(key):
            raise ValidationFailed.for_field(field_name, f"{key!r} is not a valid taint key: {KEY_RULE}.")
        value = str(taint.get("value", "") or "")
        effect = str(taint.get("effect", "NoSchedule") or "NoSchedule")
        if not LABEL_VALUE_RE.match(value):
            raise ValidationFailed.for_field(
                field_name, f"{value!r} is not a valid taint value (for {key}): {VALUE_RULE}."
            )
        if effect not in TAINT_EFFECTS:
            raise ValidationFailed.for_field(
                field_name, f"{effect!r}: the effect must be one of {', '.join(TAINT_EFFECTS)}."
            )
        if any(t["key"] == key and t["effect"] == effect for t in result):
            raise ValidationFailed.for_field(field_name, f"The taint {key}:{effect} is given twice.")
        result.append({"key": key, "value": value, "effect": effect})
    return result


# The label syntax of the portal's fields and the CLI's --pool (docs/pool-labels.md): items separated
# by "," or ";". The CLI parses the same grammar in cli/labels.py; tests/cli/test_label_syntax.py
# holds the two to the same answers for every input.
_ITEM_SEPARATORS = re.compile(r"[,;]")


def _items(text: str) -> list[str]:
    return [item.strip() for item in _ITEM_SEPARATORS.split(text) if item.strip()]


def parse_labels(text: str, field_name: str) -> dict[str, str]:
    """`tier=web, team=shop` as checked labels; a bad one is a ValidationFailed for `field_name`."""
    labels: dict[str, str] = {}
    for item in _items(text):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValidationFailed.for_field(field_name, f"{item!r}: write each label as key=value.")
        if key in labels:
            raise ValidationFailed.for_field(field_name, f"The label {key} is given twice.")
        labels[key] = value.strip()
    return check_labels(labels, field_name)


def parse_taints(text: str, field_name: str) -> list[dict[str, str]]:
    """`gpu=true:NoSchedule, dedicated:NoExecute` as checked taints (the effect defaults to NoSchedule)."""
    taints: list[dict[str, str]] = []
    for item in _items(text):
        head, sep, effect = item.rpartition(":")
        if not sep:
            head, effect = item, "NoSchedule"
        key, _, value = head.partition("=")
        if not key.strip() or not effect.strip():
            raise ValidationFailed.for_field(
                field_name, f"{item!r}: write each taint as key[=value][:Effect]."
            )
        taints.append({"key": key.strip(), "value": value.strip(), "effect": effect.strip()})
    return check_taints(taints, field_name)


def check_pool(raw: Any, index: int, *, size_ids: set[str] | None) -> PoolInput:
    """One pool of a request; `size_ids` None skips the size check (imported clusters)."""
    prefix = f"pools[{index}]"
    if not isinstance(raw, dict):
        raise ValidationFailed.for_field(prefix, "Give a pool as {name, size, count, labels, taints}.")
    name = str(raw.get("name", "")).strip()
    if not POOL_NAME_RE.match(name):
        raise ValidationFailed.for_field(
            f"{prefix}.name", "Use 1-30 lowercase letters, digits and hyphens, starting with a letter."
        )
    size = str(raw.get("size", "")).strip()
    if size_ids is not None and size not in size_ids:
        raise ValidationFailed.for_field(
            f"{prefix}.size", f"Unknown size {size!r}; choose one of: {', '.join(sorted(size_ids))}."
        )
    return PoolInput(
        name=name,
        size=size,
        count=check_count(raw.get("count"), f"{prefix}.count"),
        labels=check_labels(raw.get("labels"), f"{prefix}.labels"),
        taints=check_taints(raw.get("taints"), f"{prefix}.taints"),
    )


def check_pools(raw: Any, *, size_ids: set[str]) -> list[PoolInput]:
    """At least one pool, unique names."""
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed.for_field("pools", "Give at least one node pool.")
    if len(raw) > MAX_POOLS:
        raise ValidationFailed.for_field("pools", f"At most {MAX_POOLS} pools.")
    pools = [check_pool(p, i, size_ids=size_ids) for i, p in enumerate(raw)]
    names = [p.name for p in pools]
    if len(set(names)) != len(names):
        raise ValidationFailed.for_field("pools", "Pool names must be unique.")
    return pools


def check_region(driver: ProviderDriver, region: str) -> str:
    """A region the provider lists."""
    regions = _catalogue(driver.regions)
    ids = {r.id for r in regions}
    if not region and len(ids) == 1:
        return str(next(iter(ids)))
    if region not in ids:
        raise ValidationFailed.for_field(
            "region", f"Unknown region {region!r}; choose one of: {', '.join(sorted(ids))}."
        )
    return region


def size_ids(driver: ProviderDriver, region: str) -> set[str]:
    """The sizes of a region."""
    return {s.id for s in _catalogue(lambda: driver.sizes(region))}


def check_version(driver: ProviderDriver, version: str | None) -> str:
    """A version the provider can run (its newest when none is asked for)."""
    offered = driver.versions()
    if not offered:
        raise ValidationFailed.for_field("version", "This provider has no Kubernetes versions available.")
    if not (version or "").strip():
        return offered[0]
    try:
        wanted = KubeVersion.parse(version or "")
    except versions.InvalidVersion as exc:
        raise ValidationFailed.for_field("version", f"{exc} Choose one of: {', '.join(offered)}.") from exc
    if wanted not in {KubeVersion.from_any(v) for v in offered}:
        raise ValidationFailed.for_field("version", f"Choose one of: {', '.join(offered)}.")
    return str(wanted)


def check_upgrade(current: str, target: str) -> str:
    """An upgrade Kubernetes allows: a newer version, at most one minor version ahead."""
    problem = versions.upgrade_problem(current, target)
    if problem == versions.UpgradeProblem.SAME:
        raise ValidationFailed.for_field("version", f"The cluster already runs {target}.")
    if problem == versions.UpgradeProblem.DOWNGRADE:
        raise ValidationFailed.for_field(
            "version", f"Kubernetes does not support downgrades ({current} to {target})."
        )
    if problem == versions.UpgradeProblem.SKIPS_A_MINOR:
        raise ValidationFailed.for_field(
            "version",
            f"Kubernetes upgrades one minor version at a time: from {current}, move to "
            f"{versions.next_minor(current)} first.",
        )
    return target


def _catalogue(read: Any) -> list[Any]:
    try:
        return list(read())
    except ProviderError as exc:
        raise ProviderError(f"Could not read the provider's catalogue: {exc.message}") from exc
