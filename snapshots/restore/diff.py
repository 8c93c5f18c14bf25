"""Field diffs: a preview's live-versus-desired object, and two snapshots' objects compared.

Paths name fields with dots and list items with ``[i]``; a key that is not a plain identifier is
quoted, e.g. ``metadata.annotations["app.kubernetes.io/name"]``. Ignore patterns use the same
form, with ``*`` for any key and ``[*]`` for any item, and ignore everything under the path.

`semantic_diff` compares a snapshot of the source with a snapshot of the restored cluster. Both
sides first go through what a restore does (objects `skip_reason` leaves out are dropped; `clean`
is applied, with the restore's namespace and storage-class maps on the source side), so the diff
ignores exactly what a restore is expected to change. `SEMANTIC_IGNORED` lists each with its
reason, for the documentation to quote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from typing import Any

from snapshots.restore.clean import CONTROLLER_ANNOTATIONS, NO_MAP, clean, skip_reason
from snapshots.selection import split_api_version

Segment = str | int
ObjectKey = tuple[str, str, str, str]

DEFAULT_IGNORE: tuple[str, ...] = (
    "metadata.uid",
    "metadata.resourceVersion",
    "metadata.generation",
    "metadata.creationTimestamp",
    "metadata.managedFields",
    "metadata.selfLink",
    'metadata.annotations["deployment.kubernetes.io/revision"]',
    "status",
)

SEMANTIC_IGNORE: tuple[str, ...] = ("metadata.ownerReferences[*].uid",)

SERVICE_ADDRESS_PATHS: tuple[str, ...] = (
    "spec.clusterIP",
    "spec.clusterIPs",
    "spec.ports[*].nodePort",
    "spec.healthCheckNodePort",
)

SEMANTIC_IGNORED: tuple[tuple[str, str], ...] = (
    (
        "metadata.uid, resourceVersion, creationTimestamp, generation, managedFields, selfLink",
        "set by the API server on every create or write",
    ),
    (
        "deletionTimestamp and deletionGracePeriodSeconds",
        "an object being deleted in the source is restored alive",
    ),
    ("status", "observed state, rebuilt by the target's controllers"),
    (
        "metadata.ownerReferences[].uid",
        "new owners have new uids; owners are still compared by apiVersion, kind and name",
    ),
    (
        "Service clusterIP(s), nodePorts and healthCheckNodePort, only of the Services whose "
        "addresses the restore reported as reassigned",
        "they were taken in the target",
    ),
    (
        "annotations " + ", ".join(sorted(CONTROLLER_ANNOTATIONS)),
        "written by controllers about the cluster they run in",
    ),
    (
        "PersistentVolumeClaim spec.volumeName and pv.kubernetes.io/* annotations",
        "the restored claim is bound to a new volume",
    ),
    ("PersistentVolume spec.claimRef uid and resourceVersion", "the claim is a new object"),
    (
        "Job spec.selector, manualSelector and the controller-uid labels (without manualSelector)",
        "generated from the Job's uid",
    ),
    (
        "ServiceAccount token Secrets' token, ca.crt and namespace data, and the account uid annotation",
        "the target's token controller issues a new token signed by its own key",
    ),
    ("the Namespace label kubernetes.io/metadata.name", "set by the API server to the name"),
    (
        "every object a restore never writes (see clean.NEVER_RESTORED and NEVER_RESTORED_RULES)",
        "the target has or makes its own",
    ),
)

_TOKEN = re.compile(r'\.?([A-Za-z0-9_$*-]+)|\[(\d+|\*)\]|\["((?:[^"\\]|\\.)*)"\]')
_PLAIN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_ANY_KEY = object()


def format_path(segments: Sequence[Segment]) -> str:
    """Render segments (keys and indexes) as ``a.b[0]["c.d"]``."""
    parts: list[str] = []
    for segment in segments:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif _PLAIN.match(segment):
            parts.append(f".{segment}" if parts else segment)
        else:
            parts.append(f"[{json.dumps(segment)}]")
    return "".join(parts)


def parse_path(text: str) -> tuple[Segment, ...]:
    """Parse a path or an ignore pattern (``*`` and ``[*]`` kept as the string ``*``)."""
    segments: list[Segment] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ValueError(f"bad path {text!r} at {position}")
        name, index, quoted = match.groups()
        if name is not None:
            segments.append(name)
        elif index is not None:
            segments.append("*" if index == "*" else int(index))
        else:
            segments.append(json.loads(f'"{quoted}"'))
        position = match.end()
    return tuple(segments)


def _compile(patterns: Iterable[str]) -> tuple[tuple[Segment, ...], ...]:
    return tuple(parse_path(pattern) for pattern in patterns)


def _ignored(path: Sequence[Segment], patterns: Iterable[tuple[Segment, ...]]) -> bool:
    for pattern in patterns:
        if len(pattern) <= len(path) and all(
            want == "*" or want == got for want, got in zip(pattern, path, strict=False)
        ):
            return True
    return False


def _change(path: Sequence[Segment], before: Any, after: Any) -> dict[str, Any]:
    return {"path": format_path(path), "before": before, "after": after}


def field_diff(
    live: Mapping[str, Any], desired: Mapping[str, Any], *, ignore: Iterable[str] = DEFAULT_IGNORE
) -> list[dict[str, Any]]:
    """The fields `desired` sets that differ in `live`: [{"path", "before", "after"}].

    Fields only `live` has are not changes (server-side apply leaves them alone). Lists are
    compared item by item when their lengths agree and whole otherwise; a field `live` lacks has
    before None.
    """
    patterns = _compile(ignore)
    changes: list[dict[str, Any]] = []
    _walk_desired(live, desired, (), patterns, changes)
    return changes


def _walk_desired(
    live: Any,
    desired: Any,
    path: tuple[Segment, ...],
    patterns: tuple[tuple[Segment, ...], ...],
    changes: list[dict[str, Any]],
) -> None:
    if path and _ignored(path, patterns):
        return
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        for key, value in desired.items():
            child = (*path, str(key))
            if key in live:
                _walk_desired(live[key], value, child, patterns, changes)
            elif not _ignored(child, patterns):
                changes.append(_change(child, None, value))
    elif isinstance(desired, list) and isinstance(live, list) and len(desired) == len(live):
        for index, (before, after) in enumerate(zip(live, desired, strict=True)):
            _walk_desired(before, after, (*path, index), patterns, changes)
    elif live != desired:
        changes.append(_change(path, live, desired))


def _walk_both(
    a: Any,
    b: Any,
    path: tuple[Segment, ...],
    patterns: tuple[tuple[Segment, ...], ...],
    changes: list[dict[str, Any]],
) -> None:
    if path and _ignored(path, patterns):
        return
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in list(a) + [key for key in b if key not in a]:
            child = (*path, str(key))
            if key in a and key in b:
                _walk_both(a[key], b[key], child, patterns, changes)
            elif not _ignored(child, patterns):
                changes.append(_change(child, a.get(key), b.get(key)))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (left, right) in enumerate(zip(a, b, strict=True)):
            _walk_both(left, right, (*path, index), patterns, changes)
    elif a != b:
        changes.append(_change(path, a, b))


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    """(group, kind, namespace, name): how two snapshots' objects are paired."""
    group, _ = split_api_version(str(obj.get("apiVersion", "")))
    metadata = obj.get("metadata") or {}
    return (
        group,
        str(obj.get("kind", "")),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name", "")),
    )


def _services_with_selector(objects: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for obj in objects:
        if (
            obj.get("apiVersion") == "v1"
            and obj.get("kind") == "Service"
            and (obj.get("spec") or {}).get("selector")
        ):
            metadata = obj.get("metadata") or {}
            found.add((str(metadata.get("namespace") or ""), str(metadata.get("name", ""))))
    return found


def _restorable(
    objects: list[Mapping[str, Any]],
    *,
    namespace_map: Mapping[str, str],
    storage_class_map: Mapping[str, str],
    explicitly_included_namespaces: Container[str],
) -> dict[ObjectKey, dict[str, Any]]:
    services = _services_with_selector(objects)
    kept: dict[ObjectKey, dict[str, Any]] = {}
    for obj in objects:
        if skip_reason(
            obj,
            explicitly_included_namespaces=explicitly_included_namespaces,
            services_with_selector=services,
        ):
            continue
        cleaned = clean(obj, namespace_map=namespace_map, storage_class_map=storage_class_map)
        kept[object_key(cleaned)] = cleaned
    return kept


def semantic_diff(
    a: Iterable[Mapping[str, Any]],
    b: Iterable[Mapping[str, Any]],
    *,
    ignore: Iterable[str] = SEMANTIC_IGNORE,
    reassigned_services: Collection[ObjectKey] = frozenset(),
    namespace_map: Mapping[str, str] = NO_MAP,
    storage_class_map: Mapping[str, str] = NO_MAP,
    explicitly_included_namespaces: Container[str] = frozenset(),
) -> list[dict[str, Any]]:
    """How `b` (a snapshot of the restored cluster) differs from `a` (the source's snapshot).

    One entry per difference: {"group", "kind", "namespace", "name", "change", "path", "before",
    "after"}, where change is "missing" (in a, not in b), "extra" (in b, not in a) or "changed"
    (one field). Keys are in b's terms (after `namespace_map`), as are `reassigned_services`.
    An empty list means the restore was faithful.
    """
    patterns = _compile(ignore)
    address_patterns = _compile(SERVICE_ADDRESS_PATHS)
    options = {"explicitly_included_namespaces": explicitly_included_namespaces}
    left = _restorable(list(a), namespace_map=namespace_map, storage_class_map=storage_class_map, **options)
    right = _restorable(list(b), namespace_map=NO_MAP, storage_class_map=NO_MAP, **options)
    result: list[dict[str, Any]] = []
    for key in sorted(set(left) | set(right)):
        head = {"group": key[0], "kind": key[1], "namespace": key[2], "name": key[3]}
        if key not in right:
            result.append({**head, "change": "missing", "path": "", "before": None, "after": None})
        elif key not in left:
            result.append({**head, "change": "extra", "path": "", "before": None, "after": None})
        else:
            changes: list[dict[str, Any]] = []
            object_patterns = patterns + address_patterns if key in reassigned_services else patterns
            _walk_both(left[key], right[key], (), object_patterns, changes)
            result.extend({**head, "change": "changed", **change} for change in changes)
    return result
