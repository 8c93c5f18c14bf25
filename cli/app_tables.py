"""How `flotilla apps` shows apps, their pods, revisions and a cluster's workloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cli.client import JsonObject
from cli.output import Column, field, text_of, time_field, timestamp
from cli.progress import operation_cell

# The clock of the AGE columns; tests replace it.
_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def age(value: Any) -> str:
    """How long ago an ISO 8601 timestamp was, as kubectl says it: `45s`, `12m`, `5h`, `3d`."""
    if not isinstance(value, str) or not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = max(0, int((_now() - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _spec(app: JsonObject) -> JsonObject:
    spec = app.get("spec")
    return spec if isinstance(spec, dict) else {}


def _replicas(app: JsonObject) -> JsonObject:
    replicas = app.get("replicas")
    return replicas if isinstance(replicas, dict) else {}


def cluster_name(app: JsonObject) -> str:
    """The name of the app's cluster."""
    cluster = app.get("cluster")
    return text_of(cluster.get("name")) if isinstance(cluster, dict) else text_of(cluster)


def ready_cell(app: JsonObject) -> str:
    """`ready/desired` replicas as last observed."""
    replicas = _replicas(app)
    desired = replicas.get("desired", _spec(app).get("replicas"))
    return f"{text_of(replicas.get('ready'))}/{text_of(desired)}"


def where(app: JsonObject) -> str:
    """`cluster/namespace`, how an app is told apart from others of the same name."""
    return f"{cluster_name(app)}/{text_of(app.get('namespace'))}"


APP_COLUMNS = [
    field("name"),
    Column("cluster", cluster_name),
    field("namespace"),
    Column("image", lambda a: text_of(_spec(a).get("image"))),
    Column("ready", ready_cell, no_wrap=True),
    field("status", no_wrap=True),
    field("revision", no_wrap=True),
    Column("age", lambda a: age(a.get("created_at")), no_wrap=True),
]


def pod_status(pod: JsonObject) -> str:
    """The one-line why (CrashLoopBackOff, Terminating...), else the phase."""
    if pod.get("deleting"):
        return "Terminating"
    return text_of(pod.get("reason") or pod.get("phase"))


POD_COLUMNS = [
    field("name", no_wrap=True),
    Column("ready", lambda p: f"{text_of(p.get('ready'))}/{text_of(p.get('total'))}", no_wrap=True),
    Column("status", pod_status, no_wrap=True),
    field("restarts", no_wrap=True),
    field("node", no_wrap=True),
    Column("age", lambda p: age(p.get("created_at")), no_wrap=True),
]


def revision_cell(revision: JsonObject) -> str:
    """The number, with `*` on the current revision."""
    return text_of(revision.get("number")) + ("*" if revision.get("current") else "")


def changes_cell(revision: JsonObject) -> str:
    """The revision's changes, `; `-separated (a rollback says where it went back to)."""
    changes = [str(c) for c in revision.get("changes") or []]
    if revision.get("rolled_back_to") is not None:
        changes.insert(0, f"back to revision {revision['rolled_back_to']}")
    return "; ".join(changes) or "-"


REVISION_COLUMNS = [
    Column("revision", revision_cell, no_wrap=True),
    field("kind", no_wrap=True),
    Column("changes", changes_cell),
    field("created_by", "by"),
    time_field("created_at", "when"),
]


def workload_app(workload: JsonObject) -> str:
    """The Flotilla app running this workload, or `-`."""
    app = workload.get("app")
    return text_of(app.get("name")) if isinstance(app, dict) else "-"


WORKLOAD_COLUMNS = [
    field("namespace"),
    field("name"),
    field("kind", no_wrap=True),
    Column("ready", lambda w: f"{text_of(w.get('ready'))}/{text_of(w.get('desired'))}", no_wrap=True),
    Column("images", lambda w: ",".join(str(i) for i in w.get("images") or []) or "-"),
    Column("app", workload_app),
    Column("age", lambda w: age(w.get("created_at")), no_wrap=True),
]


def _ports_text(spec: JsonObject) -> str:
    parts = []
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            name = f"{port['name']}=" if port.get("name") else ""
            parts.append(f"{name}{text_of(port.get('port'))}/{str(port.get('protocol') or 'TCP').lower()}")
    return ", ".join(parts) or "-"


def _health_text(check: Any) -> str:
    if not isinstance(check, dict):
        return "-"
    kind = check.get("type")
    if kind == "http":
        return f"http:{text_of(check.get('path'))}:{text_of(check.get('port'))}"
    if kind == "tcp":
        return f"tcp:{text_of(check.get('port'))}"
    if kind == "exec":
        return "exec:" + " ".join(str(word) for word in check.get("command") or [])
    return text_of(check)


def _resources_text(spec: JsonObject) -> str:
    resources = spec.get("resources")
    if not isinstance(resources, dict):
        return "-"
    parts = [f"{key.replace('_', ' ')} {value}" for key, value in resources.items() if value]
    return ", ".join(parts) or "-"


def app_rows(app: JsonObject) -> list[tuple[str, str]]:
    """The labelled lines of `apps get` (secret values are never in the API's answer, only their names)."""
    spec = _spec(app)
    status = text_of(app.get("status"))
    if app.get("status_reason"):
        status += f" ({app['status_reason']})"
    replicas = _replicas(app)
    env = [e for e in spec.get("env") or [] if isinstance(e, dict)]
    rows = [
        ("Name", text_of(app.get("name"))),
        ("Id", text_of(app.get("id"))),
        ("Cluster", cluster_name(app)),
        ("Namespace", text_of(app.get("namespace"))),
        ("Kind", text_of(app.get("kind"))),
        ("Status", status),
        ("Revision", text_of(app.get("revision"))),
        ("Image", text_of(spec.get("image"))),
        (
            "Replicas",
            f"{text_of(replicas.get('desired', spec.get('replicas')))} desired, "
            f"{text_of(replicas.get('updated'))} updated, {text_of(replicas.get('ready'))} ready, "
            f"{text_of(replicas.get('available'))} available",
        ),
        ("Ports", _ports_text(spec)),
        ("Env", ", ".join(f"{e.get('name')}={e.get('value')}" for e in env) or "-"),
        ("Secrets", ", ".join(str(k) for k in spec.get("secret_keys") or []) or "-"),
        ("Resources", _resources_text(spec)),
        ("Readiness", _health_text(spec.get("readiness"))),
        ("Liveness", _health_text(spec.get("liveness"))),
    ]
    if spec.get("command") or spec.get("args"):
        rows.append(
            ("Command", " ".join(str(w) for w in [*(spec.get("command") or []), *(spec.get("args") or [])]))
        )
    labels = spec.get("labels")
    if isinstance(labels, dict) and labels:
        rows.append(("Labels", ",".join(f"{k}={v}" for k, v in labels.items())))
    if app.get("adopted"):
        rows.append(("Adopted", "yes"))
    operation = app.get("operation")
    if isinstance(operation, dict):
        step = f" - {operation['step']}" if operation.get("step") else ""
        rows.append(("Operation", f"{text_of(operation.get('id'))} {operation_cell(operation)}{step}"))
    rows += [
        ("Observed", timestamp(app.get("observed_at"))),
        ("Created", timestamp(app.get("created_at"))),
    ]
    return rows
