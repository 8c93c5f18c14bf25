"""How `flotilla clusters` shows clusters, node pools, nodes and events: columns and the `get` view."""

from __future__ import annotations

from cli.client import JsonObject
from cli.output import Column, field, text_of, time_field, timestamp
from cli.progress import operation_cell


def nodes_cell(cluster: JsonObject) -> str:
    """`ready/total`."""
    return f"{text_of(cluster.get('nodes_ready'))}/{text_of(cluster.get('nodes_total'))}"


def version_cell(cluster: JsonObject) -> str:
    """The version, or `observed -> desired` while they differ."""
    desired, observed = cluster.get("version"), cluster.get("observed_version")
    if observed and desired and observed != desired:
        return f"{observed} -> {desired}"
    return text_of(desired or observed)


def status_cell(cluster: JsonObject) -> str:
    """The status (the reason stays for `clusters get`)."""
    return text_of(cluster.get("status"))


CLUSTER_COLUMNS = [
    field("name"),
    Column("status", status_cell, no_wrap=True),
    field("provider"),
    field("region"),
    Column("version", version_cell, no_wrap=True),
    Column("nodes", nodes_cell, no_wrap=True),
    Column("operation", lambda c: operation_cell(c.get("active_operation")), no_wrap=True),
]


def pool_labels(pool: JsonObject) -> str:
    """`k=v,k2=v2`."""
    labels = pool.get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in labels.items()) if isinstance(labels, dict) and labels else "-"


def pool_taints(pool: JsonObject) -> str:
    """`key=value:Effect,...`."""
    taints = pool.get("taints") or []
    if not isinstance(taints, list) or not taints:
        return "-"
    parts = []
    for taint in taints:
        if isinstance(taint, dict):
            value = f"={taint['value']}" if taint.get("value") else ""
            parts.append(f"{taint.get('key')}{value}:{taint.get('effect', 'NoSchedule')}")
    return ",".join(parts) or "-"


POOL_COLUMNS = [
    field("name"),
    field("size", no_wrap=True),
    field("count", no_wrap=True),
    Column("labels", pool_labels),
    Column("taints", pool_taints),
    Column("removing", lambda p: "yes" if p.get("removing") else "", no_wrap=True),
]
NODE_COLUMNS = [
    field("name", no_wrap=True),
    field("pool_name", "pool"),
    Column("ready", lambda n: "yes" if n.get("ready") else "no", no_wrap=True),
    field("kubelet_version", "version", no_wrap=True),
    field("cpu", no_wrap=True),
    field("memory", no_wrap=True),
    field("internal_ip", "ip", no_wrap=True),
]
EVENT_COLUMNS = [
    time_field("created_at", "time"),
    field("level", no_wrap=True),
    field("message"),
    field("operation", no_wrap=True),
]


def cluster_rows(cluster: JsonObject) -> list[tuple[str, str]]:
    """The labelled lines of `clusters get`."""
    status = text_of(cluster.get("status"))
    if cluster.get("status_reason"):
        status += f" ({cluster['status_reason']})"
    operation = cluster.get("active_operation")
    rows = [
        ("Name", text_of(cluster.get("name"))),
        ("Id", text_of(cluster.get("id"))),
        ("Status", status),
        ("Provider", f"{text_of(cluster.get('provider'))} ({text_of(cluster.get('provider_kind'))})"),
        ("Region", text_of(cluster.get("region"))),
        ("Version", text_of(cluster.get("version"))),
        ("Observed version", text_of(cluster.get("observed_version"))),
        ("API endpoint", text_of(cluster.get("api_endpoint"))),
        ("Nodes ready", nodes_cell(cluster)),
    ]
    if isinstance(operation, dict):
        step = f" - {operation['step']}" if operation.get("step") else ""
        rows.append(("Operation", f"{text_of(operation.get('id'))} {operation_cell(operation)}{step}"))
    for condition in cluster.get("conditions") or []:
        if isinstance(condition, dict):
            reason = f" ({condition['reason']})" if condition.get("reason") else ""
            rows.append(
                (f"  {text_of(condition.get('type'))}", f"{text_of(condition.get('status'))}{reason}")
            )
    rows += [
        ("Health checked", timestamp(cluster.get("health_checked_at"))),
        ("Created", timestamp(cluster.get("created_at"))),
    ]
    return rows
