"""How `flotilla snapshots`, `restore(s)` and `storage` show their objects: columns, records, reports."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cli.client import JsonObject
from cli.output import Column, Output, field, text_of, time_field, timestamp
from cli.progress import operation_cell

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
# The order in which a report's counts are told, and the words for each (API key, past, preview).
COUNT_WORDS = (
    ("created", "created", "to create"),
    ("updated", "updated", "to update"),
    ("unchanged", "unchanged", "unchanged"),
    ("skipped", "skipped", "to skip"),
    ("conflict", "in conflict", "in conflict"),
    ("failed", "failed", "failing"),
)
# A preview's items carry their action only (result "planned"): which count each one adds to.
ACTION_COUNT = {
    "create": "created",
    "update": "updated",
    "unchanged": "unchanged",
    "skip": "skipped",
    "conflict": "conflict",
    "fail": "failed",
}


def human_bytes(value: Any) -> str:
    """`1.5 MiB` (binary units, as kubectl and storage consoles say them); `-` when unknown."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        return "-"
    size = float(value)
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "-"  # not reached: the last unit always returns


def count_cell(value: Any) -> str:
    """A count with thousands separators (`12,345`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return text_of(value)


# --- storage locations --------------------------------------------------------------------------


def location_where(location: JsonObject) -> str:
    """Where a location writes: `bucket at endpoint`, the driver's name, or the org's own directory."""
    kind = location.get("kind")
    if kind == "local":
        return "the organisation's directory"
    parts = [str(location.get("bucket") or "")]
    if location.get("endpoint"):
        parts.append(f"at {location['endpoint']}")
    if kind == "libcloud" and location.get("driver"):
        parts.insert(0, f"{location['driver']}:")
    return " ".join(p for p in parts if p) or "-"


def check_cell(location: JsonObject) -> str:
    """`ok`, `failed`, or `never` (the last check of the location)."""
    if location.get("check_error"):
        return "failed"
    return "ok" if location.get("checked_at") else "never"


LOCATION_COLUMNS = [
    field("name"),
    field("kind", no_wrap=True),
    Column("where", location_where),
    field("region"),
    field("prefix"),
    Column("default", lambda loc: "yes" if loc.get("is_default") else "", no_wrap=True),
    Column("snapshots", lambda loc: count_cell(loc.get("snapshot_count")), no_wrap=True),
    Column("check", check_cell, no_wrap=True),
]


def location_rows(location: JsonObject) -> list[tuple[str, str]]:
    """The labelled lines of `storage get` (credentials are write-only: only whether some are stored)."""
    options = location.get("options")
    rows = [
        ("Name", text_of(location.get("name"))),
        ("Id", text_of(location.get("id"))),
        ("Kind", text_of(location.get("kind"))),
    ]
    if location.get("kind") == "libcloud":
        rows.append(("Driver", text_of(location.get("driver"))))
    if location.get("kind") != "local":
        rows += [
            ("Bucket", text_of(location.get("bucket"))),
            ("Endpoint", text_of(location.get("endpoint"))),
            ("Region", text_of(location.get("region"))),
        ]
    rows += [
        ("Prefix", text_of(location.get("prefix"))),
        (
            "Options",
            ",".join(f"{k}={v}" for k, v in options.items())
            if isinstance(options, dict) and options
            else "-",
        ),
        ("Credentials", "stored" if location.get("has_credentials") else "none"),
        ("Default", "yes" if location.get("is_default") else "no"),
        ("Snapshots", count_cell(location.get("snapshot_count"))),
        ("Checked", timestamp(location.get("checked_at"))),
    ]
    if location.get("check_error"):
        rows.append(("Check error", text_of(location.get("check_error"))))
    rows += [
        ("Created", timestamp(location.get("created_at"))),
        ("Created by", text_of(location.get("created_by"))),
    ]
    return rows


# --- snapshots ----------------------------------------------------------------------------------


def snapshot_cluster(snapshot: JsonObject) -> str:
    """The cluster's name, marked when the cluster is gone (a snapshot outlives its cluster)."""
    name = text_of(snapshot.get("cluster_name"))
    return name if snapshot.get("cluster") is not None else f"{name} (deleted)"


def snapshot_status(snapshot: JsonObject) -> str:
    """The status, with the operation's progress while it runs."""
    status = text_of(snapshot.get("status"))
    operation = snapshot.get("operation")
    if isinstance(operation, dict) and operation.get("status") == "running":
        return f"{status} {text_of(operation.get('progress'))}%"
    return status


SNAPSHOT_COLUMNS = [
    field("name"),
    field("id", no_wrap=True),
    Column("cluster", snapshot_cluster),
    Column("status", snapshot_status, no_wrap=True),
    Column("objects", lambda s: count_cell(s.get("object_count")), no_wrap=True),
    Column("size", lambda s: human_bytes(s.get("stored_bytes")), no_wrap=True),
    field("location_name", "location"),
    time_field("created_at", "created"),
]


def _words(values: Any) -> list[str]:
    return [str(v) for v in values] if isinstance(values, list) else []


def selection_text(selection: Any) -> str:
    """A selection in one line: `namespaces shop,team-* except kube-*; kinds ...; labels app=web`."""
    if not isinstance(selection, dict):
        return "everything"
    parts = []
    for what, include, exclude in (
        ("namespaces", "include_namespaces", "exclude_namespaces"),
        ("kinds", "include_kinds", "exclude_kinds"),
    ):
        kept, dropped = _words(selection.get(include)), _words(selection.get(exclude))
        if kept or dropped:
            text = f"{what} {','.join(kept) or 'all'}"
            parts.append(text + (f" except {','.join(dropped)}" if dropped else ""))
    if selection.get("label_selector"):
        parts.append(f"labels {selection['label_selector']}")
    if selection.get("cluster_scoped") is False:
        parts.append("no cluster-scoped objects")
    return "; ".join(parts) or "everything"


def snapshot_rows(snapshot: JsonObject) -> list[tuple[str, str]]:
    """The labelled lines of `snapshots get`."""
    status = text_of(snapshot.get("status"))
    if snapshot.get("reason"):
        status += f" ({snapshot['reason']})"
    rows = [
        ("Name", text_of(snapshot.get("name"))),
        ("Id", text_of(snapshot.get("id"))),
        ("UUID", text_of(snapshot.get("uuid"))),
        ("Cluster", snapshot_cluster(snapshot)),
        ("Status", status),
        ("Location", text_of(snapshot.get("location_name"))),
        ("Selection", selection_text(snapshot.get("selection"))),
        ("Objects", count_cell(snapshot.get("object_count"))),
        (
            "Size",
            f"{human_bytes(snapshot.get('stored_bytes'))} stored, {human_bytes(snapshot.get('raw_bytes'))} "
            f"raw, in {count_cell(snapshot.get('chunk_count'))} chunks",
        ),
        ("Kubernetes", text_of(snapshot.get("kubernetes_version"))),
        ("Provider", f"{text_of(snapshot.get('provider'))}, region {text_of(snapshot.get('region'))}"),
        ("Format", text_of(snapshot.get("format_version"))),
    ]
    operation = snapshot.get("operation")
    if isinstance(operation, dict):
        step = f" - {operation['step']}" if operation.get("step") else ""
        rows.append(("Operation", f"{text_of(operation.get('id'))} {operation_cell(operation)}{step}"))
    rows += [
        ("Created", timestamp(snapshot.get("created_at"))),
        ("Created by", text_of(snapshot.get("created_by"))),
        ("Completed", timestamp(snapshot.get("completed_at"))),
    ]
    return rows


KIND_COUNT_COLUMNS = [field("kind"), Column("objects", lambda k: count_cell(k.get("count")), no_wrap=True)]
CONDITION_COLUMNS = [
    field("type", no_wrap=True),
    field("status", no_wrap=True),
    field("reason", no_wrap=True),
    field("message"),
]


def kind_counts(snapshot: JsonObject) -> list[JsonObject]:
    """The snapshot's kinds as rows, the most numerous first."""
    kinds = snapshot.get("kinds")
    if not isinstance(kinds, dict):
        return []
    rows = [{"kind": str(kind), "count": count} for kind, count in kinds.items()]
    return sorted(rows, key=lambda row: (-row["count"] if isinstance(row["count"], int) else 0, row["kind"]))


def conditions(snapshot: JsonObject) -> list[JsonObject]:
    """The snapshot's conditions (what did not go as planned, such as a list that could not be finished)."""
    return [c for c in snapshot.get("conditions") or [] if isinstance(c, dict)]


# --- restores -----------------------------------------------------------------------------------


def _counts(restore: JsonObject) -> JsonObject:
    counts = restore.get("counts")
    return counts if isinstance(counts, dict) else {}


def counts_cell(restore: JsonObject) -> str:
    """The restore's non-zero counts: `12 created, 1 failed`."""
    counts = _counts(restore)
    parts = [f"{count_cell(counts[key])} {past}" for key, past, _ in COUNT_WORDS if counts.get(key)]
    return ", ".join(parts) or "-"


RESTORE_COLUMNS = [
    field("id", no_wrap=True),
    field("snapshot_name", "snapshot"),
    field("target_name", "into"),
    field("mode", no_wrap=True),
    field("status", no_wrap=True),
    Column("objects", counts_cell),
    time_field("created_at", "created"),
]


def options_text(options: Any) -> str:
    """A restore's options in one line: its selection, the mappings and the policy for existing objects."""
    if not isinstance(options, dict):
        return "-"
    parts = [selection_text(options)]
    for label, key in (("namespaces", "namespace_map"), ("storage classes", "storage_class_map")):
        mapping = options.get(key)
        if isinstance(mapping, dict) and mapping:
            parts.append(f"{label} " + ",".join(f"{a}->{b}" for a, b in mapping.items()))
    parts.append(f"existing objects: {text_of(options.get('existing') or 'skip')}")
    return "; ".join(parts)


def restore_rows(restore: JsonObject) -> list[tuple[str, str]]:
    """The labelled lines of `restores get`."""
    status = text_of(restore.get("status"))
    if restore.get("reason"):
        status += f" ({restore['reason']})"
    rows = [
        ("Id", text_of(restore.get("id"))),
        ("Mode", text_of(restore.get("mode"))),
        ("Snapshot", text_of(restore.get("snapshot_name"))),
        ("Into", text_of(restore.get("target_name"))),
        ("Status", status),
        ("Options", options_text(restore.get("options"))),
        ("Objects", counts_cell(restore)),
    ]
    operation = restore.get("operation")
    if isinstance(operation, dict):
        step = f" - {operation['step']}" if operation.get("step") else ""
        rows.append(("Operation", f"{text_of(operation.get('id'))} {operation_cell(operation)}{step}"))
    rows += [
        ("Created", timestamp(restore.get("created_at"))),
        ("Created by", text_of(restore.get("created_by"))),
        ("Completed", timestamp(restore.get("completed_at"))),
    ]
    return rows


def item_kind(item: JsonObject) -> str:
    """`apps/v1 Deployment`."""
    return f"{text_of(item.get('api_version'))} {text_of(item.get('kind'))}"


def item_namespace(item: JsonObject) -> str:
    """The target namespace, with the snapshot's one when a mapping changed it (`shop-copy<-shop`)."""
    namespace, source = item.get("namespace") or "", item.get("source_namespace") or ""
    if source and source != namespace:
        return f"{namespace or '-'}<-{source}"
    return text_of(namespace)


def item_message(item: JsonObject) -> str:
    """The item's message; for an update without one, how many fields change."""
    if item.get("message"):
        return str(item["message"])
    diff = item.get("diff")
    if item.get("action") == "update" and isinstance(diff, list) and diff:
        return f"{len(diff)} field{'s' if len(diff) > 1 else ''} change"
    return "-"


ITEM_COLUMNS = [
    field("action", no_wrap=True),
    field("result", no_wrap=True),
    Column("kind", item_kind, no_wrap=True),
    Column("namespace", item_namespace, no_wrap=True),
    field("name"),
    Column("message", item_message),
]


def counts_from_items(items: Iterable[JsonObject]) -> dict[str, int]:
    """A report's counts computed from its rows (a failed action or result counts as failed)."""
    counts = {key: 0 for key, _, _ in COUNT_WORDS}
    for item in items:
        key = "failed" if item.get("result") == "failed" else ACTION_COUNT.get(str(item.get("action")))
        if key:
            counts[key] += 1
    return counts


def summary(counts: JsonObject, *, preview: bool) -> str:
    """`12 to create, 3 to update, 40 unchanged` (preview) or `12 created, 1 failed`."""
    parts = [
        f"{count_cell(counts[key])} {future if preview else past}"
        for key, past, future in COUNT_WORDS
        if counts.get(key)
    ]
    return ", ".join(parts) or "nothing"


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def diff_lines(items: Iterable[JsonObject]) -> list[str]:
    """Each changed object's fields: a header line, then `  path: before -> after` lines."""
    lines: list[str] = []
    for item in items:
        diff = [d for d in item.get("diff") or [] if isinstance(d, dict)]
        if not diff:
            continue
        where = item_namespace(item)
        name = f"{where}/{text_of(item.get('name'))}" if item.get("namespace") else text_of(item.get("name"))
        lines.append(f"{item_kind(item)} {name}:")
        for change in diff:
            before, after = _value(change.get("before")), _value(change.get("after"))
            lines.append(f"  {text_of(change.get('path'))}: {before} -> {after}")
    return lines


def print_report(out: Output, items: list[JsonObject], *, unchanged_hidden: bool) -> None:
    """The rows of a report as a table (the unchanged ones left out when asked), then the field diffs."""
    shown = [i for i in items if i.get("action") != "unchanged"] if unchanged_hidden else items
    out.table(ITEM_COLUMNS, shown, empty="No objects to report.")
    hidden = len(items) - len(shown)
    if hidden:
        out.note(f"{hidden:,} unchanged object{'s' if hidden > 1 else ''} not listed.")
    lines = diff_lines(shown)
    if lines:
        out.result("")
        out.result("Changes:")
        for line in lines:
            out.result(line)
