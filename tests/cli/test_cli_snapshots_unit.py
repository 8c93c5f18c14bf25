"""Fast tests of `flotilla snapshots`, `restore`, `restores` and `storage`: a fake API over HTTP.

No Django here: run with `pytest tests/cli/test_cli_snapshots_unit.py -p no:django --noconftest`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from cli import progress
from cli.commands import restore as restore_cmd
from cli.commands import snapshots as snapshots_cmd
from cli.commands import storage as storage_cmd
from cli.errors import UsageError
from cli.main import build_app
from cli.snapshot_tables import human_bytes, selection_text
from tests.cli.test_cli_clusters_unit import FakeApi, assert_error, cluster, error, operation, page

SERVER = "http://flotilla.test"
TOKEN = "flt_0123abcd_s3cr3t"
CLUSTERS = "/api/v1/clusters/"
OPERATIONS = f"{CLUSTERS}operations/"
SNAPSHOTS = "/api/v1/snapshots/"
LOCATIONS = f"{SNAPSHOTS}locations/"
RESTORES = f"{SNAPSHOTS}restores/"
SECRET = "wJalrXUtnFEMI-very-secret"


def location(**extra: Any) -> dict[str, Any]:
    """A storage location as the API shows it."""
    return {
        "id": 2,
        "name": "backups",
        "kind": "s3",
        "driver": "",
        "bucket": "flotilla",
        "endpoint": "http://127.0.0.1:9000",
        "region": "us-east-1",
        "prefix": "prod",
        "options": {},
        "is_default": True,
        "has_credentials": True,
        "checked_at": "2026-12-02T11:00:00Z",
        "check_error": "",
        "snapshot_count": 3,
        "created_at": "2026-12-01T09:00:00Z",
        "created_by": "alice@example.com",
        **extra,
    }


def snap_op(status: str = "queued", kind: str = "snapshot", **extra: Any) -> dict[str, Any]:
    """A snapshot's operation."""
    return operation(ident=40, kind=kind, status=status, **extra)


def snapshot(**extra: Any) -> dict[str, Any]:
    """A snapshot as the API shows it."""
    return {
        "id": 5,
        "uuid": "0b9d2a4e-5c1f-4f4e-9b7c-3f1e2d4c5b6a",
        "name": "nightly",
        "cluster": 7,
        "cluster_name": "demo",
        "location": 2,
        "location_name": "backups",
        "status": "completed",
        "reason": "",
        "selection": {
            "include_namespaces": [],
            "exclude_namespaces": [],
            "include_kinds": [],
            "exclude_kinds": [],
            "label_selector": "",
            "cluster_scoped": True,
        },
        "conditions": [],
        "object_count": 1234,
        "raw_bytes": 5 * 1024 * 1024,
        "stored_bytes": 1536 * 1024,
        "chunk_count": 4,
        "kinds": {"v1/ConfigMap": 1000, "apps/v1/Deployment": 34, "v1/Secret": 200},
        "kubernetes_version": "1.31.0",
        "provider": "local",
        "region": "local",
        "format_version": 1,
        "created_by": "alice@example.com",
        "created_at": "2026-12-02T10:00:00Z",
        "completed_at": "2026-12-02T10:01:00Z",
        "operation": None,
        **extra,
    }


def restore_op(status: str = "queued", kind: str = "restore", **extra: Any) -> dict[str, Any]:
    """A restore's operation."""
    return operation(ident=50, kind=kind, status=status, cluster_name="staging", **extra)


def restore_json(**extra: Any) -> dict[str, Any]:
    """A restore as the API shows it."""
    return {
        "id": 9,
        "uuid": "7c1e0b8a-1111-4222-8333-944455556666",
        "snapshot": 5,
        "snapshot_name": "nightly",
        "target": 8,
        "target_name": "staging",
        "mode": "restore",
        "status": "completed",
        "reason": "",
        "options": {"namespace_map": {"shop": "shop-copy"}, "storage_class_map": {}, "existing": "skip"},
        "counts": {"created": 3, "updated": 0, "unchanged": 0, "skipped": 0, "conflict": 0, "failed": 0},
        "created_by": "alice@example.com",
        "created_at": "2026-12-02T11:00:00Z",
        "completed_at": "2026-12-02T11:02:00Z",
        "operation": None,
        **extra,
    }


def item(seq: int, kind: str, name: str, action: str, result: str = "done", **extra: Any) -> dict[str, Any]:
    """A row of a restore's report."""
    return {
        "seq": seq,
        "api_version": extra.pop("api_version", "v1"),
        "kind": kind,
        "namespace": extra.pop("namespace", "shop-copy"),
        "source_namespace": extra.pop("source_namespace", "shop"),
        "name": name,
        "action": action,
        "result": result,
        "message": extra.pop("message", ""),
        "diff": extra.pop("diff", []),
    }


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Credentials from the environment, no real waits, no terminal."""
    for name in (
        "FLOTILLA_OUTPUT",
        "FLOTILLA_CLI_TRACEBACK",
        "COLUMNS",
        storage_cmd.SECRET_ENV,
        storage_cmd.ACCESS_KEY_ENV,
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOTILLA_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("FLOTILLA_SERVER", SERVER)
    monkeypatch.setenv("FLOTILLA_TOKEN", TOKEN)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(progress, "_sleep", lambda seconds: None)
    yield


def by_name(items: list[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    """A list endpoint that filters on `?name=` as the API does."""

    def handler(request: httpx.Request) -> httpx.Response:
        wanted = request.url.params.get("name")
        return httpx.Response(200, json=page([i for i in items if wanted is None or i["name"] == wanted]))

    return handler


@pytest.fixture
def api() -> FakeApi:
    fake = FakeApi()
    fake.on_handler("GET", CLUSTERS, by_name([cluster(), cluster(id=8, name="staging")]))
    fake.on("GET", f"{CLUSTERS}7/", cluster())
    fake.on("GET", f"{CLUSTERS}8/", cluster(id=8, name="staging"))
    fake.on_handler("GET", SNAPSHOTS, by_name([snapshot()]))
    fake.on("GET", f"{SNAPSHOTS}5/", snapshot())
    fake.on(
        "GET", LOCATIONS, page([location(), location(id=3, name="local", kind="local", is_default=False)])
    )
    fake.on("GET", f"{LOCATIONS}2/", location())
    fake.on("GET", f"{RESTORES}9/", restore_json())
    return fake


@pytest.fixture
def run(api: FakeApi) -> Callable[..., Result]:
    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(build_app(transport=httpx.MockTransport(api)), list(args), input=input)

    return invoke


def posts(api: FakeApi) -> list[str]:
    return [path for method, path in api.calls() if method in ("POST", "PATCH", "DELETE")]


# --- the flags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    ["ConfigMap", "apps/Deployment", "/ConfigMap", "v1/ConfigMap", "apps/v1/Deployment", "core/v1/Secret"],
)
def test_kind_patterns_the_server_accepts_pass(kind: str) -> None:
    assert snapshots_cmd.parse_kinds([kind], option="--kind") == [kind]


@pytest.mark.parametrize(
    "kind", ["config map", "apps//Deployment", "a/b/c/Kind", "apps/", "Apps/Deployment", "9Lives"]
)
def test_a_malformed_kind_is_refused(kind: str) -> None:
    with pytest.raises(UsageError, match="not a kind"):
        snapshots_cmd.parse_kinds([kind], option="--kind")


def test_namespaces_split_on_commas_and_keep_globs() -> None:
    assert snapshots_cmd.parse_namespaces(["shop,team-*", "shop", " kube-[ps]* "], option="--namespace") == [
        "shop",
        "team-*",
        "kube-[ps]*",
    ]
    for bad in ("Shop", "shop_1", "-shop", "a" * 64):
        with pytest.raises(UsageError, match="not a namespace name or pattern"):
            snapshots_cmd.parse_namespaces([bad], option="--namespace")


def test_maps_are_from_to_pairs_of_kubernetes_names() -> None:
    assert restore_cmd.parse_map(["shop=shop-copy", " web = web2 "], option="--namespace-map") == {
        "shop": "shop-copy",
        "web": "web2",
    }
    assert restore_cmd.parse_map(["fast.ssd=standard"], option="--storage-class-map", subdomain=True) == {
        "fast.ssd": "standard"
    }
    for bad, reason in (
        ("shop", "expected FROM=TO"),
        ("shop=", "expected FROM=TO"),
        ("=b", "expected FROM=TO"),
        ("Shop=b", "'Shop' is not a name"),
        ("a.b=c", "'a.b' is not a name"),
    ):
        with pytest.raises(UsageError, match=reason):
            restore_cmd.parse_map([bad], option="--namespace-map")
    with pytest.raises(UsageError, match="'a' is mapped twice"):
        restore_cmd.parse_map(["a=b", "a=c"], option="--namespace-map")


def test_sizes_and_selections_read_as_people_say_them() -> None:
    assert [human_bytes(v) for v in (0, 1023, 1024, 1536 * 1024, 5 * 1024**3, None, -1)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 MiB",
        "5.0 GiB",
        "-",
        "-",
    ]
    assert selection_text(snapshot()["selection"]) == "everything"
    assert (
        selection_text(
            {
                "include_namespaces": ["shop", "team-*"],
                "exclude_namespaces": ["kube-*"],
                "include_kinds": [],
                "exclude_kinds": ["Event"],
                "label_selector": "app=web",
                "cluster_scoped": False,
            }
        )
        == "namespaces shop,team-* except kube-*; kinds all except Event; labels app=web; "
        "no cluster-scoped objects"
    )


# --- snapshots ----------------------------------------------------------------------------------


def test_create_sends_the_cluster_location_and_selection(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", SNAPSHOTS, snapshot(status="pending", operation=snap_op()), status=202)

    result = run(
        "snapshots",
        "create",
        "demo",
        "--name",
        "nightly",
        "--location",
        "backups",
        "--namespace",
        "shop,team-*",
        "--exclude-namespace",
        "kube-*",
        "--kind",
        "ConfigMap",
        "--kind",
        "apps/Deployment",
        "--exclude-kind",
        "Event",
        "--selector",
        "app=web,tier!=db",
        "--no-cluster-scoped",
        "--idempotency-key",
        "nightly-2026-12-02",
    )

    assert result.exit_code == 0, result.output
    assert api.body("POST", SNAPSHOTS) == {
        "cluster": 7,
        "selection": {
            "include_namespaces": ["shop", "team-*"],
            "exclude_namespaces": ["kube-*"],
            "include_kinds": ["ConfigMap", "apps/Deployment"],
            "exclude_kinds": ["Event"],
            "label_selector": "app=web,tier!=db",
            "cluster_scoped": False,
        },
        "name": "nightly",
        "location": 2,
    }
    (request,) = [r for r in api.requests if r.method == "POST"]
    assert request.headers["Idempotency-Key"] == "nightly-2026-12-02"
    assert result.stdout == "Taking snapshot nightly of demo: operation 40 is queued.\n"
    assert "flotilla clusters wait 40" in result.stderr


def test_create_by_cluster_id_with_the_defaults(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", SNAPSHOTS, snapshot(status="pending", operation=snap_op()), status=202)

    result = run("-o", "json", "snapshots", "create", "7")

    assert result.exit_code == 0, result.output
    body = api.body("POST", SNAPSHOTS)
    assert body["cluster"] == 7 and "name" not in body and "location" not in body
    assert body["selection"]["cluster_scoped"] is True and body["selection"]["include_namespaces"] == []
    assert json.loads(result.stdout)["operation"]["id"] == 40
    assert_error(run("snapshots", "create", "nope"), 5, "no cluster named 'nope'")
    assert_error(run("snapshots", "create", "demo", "--location", "elsewhere"), 5, "no storage location")


def test_bad_selection_flags_exit_2_before_anything_is_sent(run: Callable[..., Result], api: FakeApi) -> None:
    assert_error(
        run("snapshots", "create", "demo", "--kind", "apps//Deployment"), 2, "--kind 'apps//Deployment'"
    )
    assert_error(run("snapshots", "create", "demo", "--namespace", "Shop"), 2, "--namespace 'Shop'")
    assert posts(api) == []


def test_create_wait_shows_objects_and_bytes_then_the_result(
    run: Callable[..., Result], api: FakeApi
) -> None:
    api.on("POST", SNAPSHOTS, snapshot(status="pending", operation=snap_op()), status=202)
    api.on(
        "GET",
        f"{OPERATIONS}40/",
        snap_op("running", progress=30, step="400 objects, 1.2 MiB"),
        snap_op("running", progress=80, step="1,100 objects, 4.0 MiB"),
        snap_op("succeeded", progress=100, step="1,234 objects, 5.0 MiB"),
    )

    result = run("snapshots", "create", "demo", "--wait")

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Snapshot nightly is completed: 1,234 objects, 1.5 MiB stored (5.0 MiB raw) in backups.\n"
    )
    assert "operation 40 (snapshot demo):  30% running - 400 objects, 1.2 MiB" in result.stderr
    assert "operation 40 (snapshot demo):  80% running - 1,100 objects, 4.0 MiB" in result.stderr
    assert "warning:" not in result.stderr


def test_create_wait_warns_of_the_conditions_of_a_completed_snapshot(
    run: Callable[..., Result], api: FakeApi
) -> None:
    api.on("POST", SNAPSHOTS, snapshot(status="pending", operation=snap_op()), status=202)
    api.on("GET", f"{OPERATIONS}40/", snap_op("succeeded", progress=100))
    caveat = {
        "type": "ListIncomplete",
        "status": "True",
        "reason": "ContinueExpired",
        "message": "v1 Event: the list changed while it was read",
    }
    api.on(
        "GET", f"{SNAPSHOTS}5/", snapshot(conditions=[caveat, {**caveat, "type": "Other", "status": "False"}])
    )

    result = run("snapshots", "create", "demo", "--wait")

    assert result.exit_code == 0, result.output
    assert "warning: ListIncomplete: v1 Event: the list changed while it was read" in result.stderr
    assert "Other" not in result.stderr


def test_create_wait_on_a_failed_snapshot_exits_9_with_why(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", SNAPSHOTS, snapshot(status="pending", operation=snap_op()), status=202)
    failed = snap_op("failed", error="storage location backups does not answer: connection refused")
    api.on("GET", f"{OPERATIONS}40/", failed)
    api.on("GET", f"{SNAPSHOTS}5/", snapshot(status="failed", reason="StorageUnavailable", operation=failed))

    result = run("snapshots", "create", "demo", "--wait")

    assert_error(
        result,
        9,
        "snapshot nightly of demo failed (StorageUnavailable): storage location backups does not answer",
    )
    assert "flotilla snapshots get 5" in result.stderr
    assert result.stdout == ""

    as_json = run("-o", "json", "snapshots", "create", "demo", "--wait")
    assert as_json.exit_code == 9
    assert json.loads(as_json.stdout)["status"] == "failed"


def test_create_wait_times_out_with_exit_10(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    monkeypatch.setattr(progress, "_clock", lambda: now[0])
    monkeypatch.setattr(progress, "_sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    api.on("POST", SNAPSHOTS, snapshot(status="pending", operation=snap_op()), status=202)
    api.on("GET", f"{OPERATIONS}40/", snap_op("running", progress=50, step="90,000 objects, 80 MiB"))

    result = run("snapshots", "create", "demo", "--wait", "--timeout", "3s")

    assert_error(result, 10, "timed out waiting for operation 40")


def test_list_filters_by_cluster_and_status(run: Callable[..., Result], api: FakeApi) -> None:
    seen: list[httpx.QueryParams] = []

    def listing(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        return httpx.Response(
            200,
            json=page(
                [
                    snapshot(),
                    snapshot(
                        id=6,
                        name="old",
                        cluster=None,
                        cluster_name="gone",
                        status="running",
                        operation=snap_op("running", progress=40),
                        stored_bytes=None,
                    ),
                ]
            ),
        )

    api.on_handler("GET", SNAPSHOTS, listing)

    result = run("snapshots", "list", "--cluster", "demo", "--status", "completed", "--location", "backups")

    assert result.exit_code == 0, result.output
    assert (seen[0]["cluster"], seen[0]["status"], seen[0]["location"]) == ("7", "completed", "2")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ID", "CLUSTER", "STATUS", "OBJECTS", "SIZE", "LOCATION", "CREATED"]
    assert lines[1].split()[:7] == ["nightly", "5", "demo", "completed", "1,234", "1.5", "MiB"]
    assert lines[2].split()[:6] == ["old", "6", "gone", "(deleted)", "running", "40%"]


def test_get_shows_kinds_sizes_and_conditions(run: Callable[..., Result], api: FakeApi) -> None:
    condition = {
        "type": "ListIncomplete",
        "status": "True",
        "reason": "ContinueExpired",
        "message": "events.k8s.io/v1 Event: the list changed while it was read",
    }
    api.on("GET", f"{SNAPSHOTS}5/", snapshot(conditions=[condition]))

    result = run("snapshots", "get", "nightly")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Size:" in out and "1.5 MiB stored, 5.0 MiB raw, in 4 chunks" in out
    assert "Objects:" in out and "1,234" in out
    assert "Selection:" in out and "everything" in out
    kinds = [line.split() for line in out.splitlines() if line.startswith(("v1/", "apps/"))]
    assert kinds == [["v1/ConfigMap", "1,000"], ["v1/Secret", "200"], ["apps/v1/Deployment", "34"]]
    assert "ContinueExpired" in out and "the list changed while it was read" in out


def test_get_by_id_and_the_live_one_of_a_reused_name(run: Callable[..., Result], api: FakeApi) -> None:
    api.on_handler(
        "GET",
        SNAPSHOTS,
        by_name([snapshot(id=3, status="deleted"), snapshot(id=5), snapshot(id=4, status="deleted")]),
    )
    api.on("GET", f"{SNAPSHOTS}3/", snapshot(id=3, name="older", status="deleted"))

    live = run("-o", "json", "snapshots", "get", "nightly")
    assert live.exit_code == 0, live.output
    assert json.loads(live.stdout)["id"] == 5

    by_id = run("-o", "json", "snapshots", "get", "3")
    assert by_id.exit_code == 0, by_id.output
    assert json.loads(by_id.stdout)["name"] == "older"

    assert_error(run("snapshots", "get", "weekly"), 5, "no snapshot named 'weekly'")
    assert_error(run("snapshots", "get", "99"), 5, "no snapshot named '99'")


def test_delete_needs_yes_off_a_terminal_then_follows_the_deletion(
    run: Callable[..., Result], api: FakeApi
) -> None:
    assert_error(run("snapshots", "delete", "nightly"), 2, "refusing to delete a snapshot")
    assert api.requests == []

    api.on(
        "DELETE",
        f"{SNAPSHOTS}5/",
        snapshot(status="deleting", operation=snap_op(kind="snapshot_delete")),
        status=202,
    )
    api.on("GET", f"{OPERATIONS}40/", snap_op("succeeded", kind="snapshot_delete", progress=100))
    api.on("GET", f"{SNAPSHOTS}5/", snapshot(status="deleted"))

    result = run("snapshots", "delete", "nightly", "--yes", "--wait")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Deleted snapshot nightly.\n"
    assert ("DELETE", f"{SNAPSHOTS}5/") in api.calls()


def test_delete_without_wait_says_how_to_follow(run: Callable[..., Result], api: FakeApi) -> None:
    api.on(
        "DELETE",
        f"{SNAPSHOTS}5/",
        snapshot(status="deleting", operation=snap_op(kind="snapshot_delete")),
        status=202,
    )

    result = run("snapshots", "delete", "5", "--yes")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Deleting snapshot nightly: operation 40 is queued.\n"


# --- restore ------------------------------------------------------------------------------------

PREVIEW_ITEMS = [
    item(1, "Namespace", "shop-copy", "create", "planned", namespace="", source_namespace=""),
    item(2, "ConfigMap", "settings", "create", "planned"),
    item(
        3,
        "Deployment",
        "web",
        "update",
        "planned",
        api_version="apps/v1",
        diff=[
            {"path": "spec.replicas", "before": 2, "after": 3},
            {"path": "metadata.labels.tier", "before": None, "after": "web"},
        ],
    ),
    item(4, "Secret", "token", "unchanged", "planned"),
    item(5, "Service", "web", "conflict", "planned", message="nodePort 30080 is taken in the target"),
    item(6, "ConfigMap", "kube-root-ca.crt", "skip", "planned", message="exists (existing: skip)"),
]


def test_restore_sends_the_options(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", RESTORES, restore_json(status="pending", operation=restore_op()), status=202)

    result = run(
        "restore",
        "nightly",
        "--into",
        "staging",
        "--namespace-map",
        "shop=shop-copy",
        "--storage-class-map",
        "fast=standard",
        "--namespace",
        "shop",
        "--exclude-kind",
        "Event",
        "--existing",
        "update",
        "--idempotency-key",
        "r-1",
    )

    assert result.exit_code == 0, result.output
    assert api.body("POST", RESTORES) == {
        "snapshot": 5,
        "target": 8,
        "mode": "restore",
        "options": {
            "include_namespaces": ["shop"],
            "exclude_namespaces": [],
            "include_kinds": [],
            "exclude_kinds": ["Event"],
            "label_selector": "",
            "cluster_scoped": True,
            "namespace_map": {"shop": "shop-copy"},
            "storage_class_map": {"fast": "standard"},
            "existing": "update",
        },
    }
    assert result.stdout == ("Started restore 9 of snapshot nightly into staging: operation 50 is queued.\n")
    assert "flotilla restores report 9" in result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--namespace-map", "a"], "--namespace-map 'a': expected FROM=TO"),
        (["--storage-class-map", "fast"], "--storage-class-map 'fast': expected FROM=TO"),
        (["--existing", "overwrite"], "Invalid value for '--existing'"),
        (["--kind", "Deploy ment"], "--kind 'Deploy ment': not a kind"),
        (["--timeout", "soon"], "--timeout"),
    ],
)
def test_bad_restore_flags_exit_2_before_anything_is_sent(
    run: Callable[..., Result], api: FakeApi, flags: list[str], message: str
) -> None:
    result = run("restore", "nightly", "--into", "staging", *flags)

    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert posts(api) == []


def test_restore_needs_a_target(run: Callable[..., Result]) -> None:
    result = run("restore", "nightly")
    assert result.exit_code == 2
    assert "--into" in result.stderr


def test_preview_waits_and_prints_what_a_restore_would_do(run: Callable[..., Result], api: FakeApi) -> None:
    pending = restore_json(mode="preview", status="pending", operation=restore_op(kind="restore_preview"))
    api.on("POST", RESTORES, pending, status=202)
    api.on(
        "GET",
        f"{OPERATIONS}50/",
        restore_op("running", kind="restore_preview", progress=50, step="dry-run: 3 of 6 objects"),
        restore_op("succeeded", kind="restore_preview", progress=100),
    )
    api.on("GET", f"{RESTORES}9/", restore_json(mode="preview", counts={}))
    api.on("GET", f"{RESTORES}9/items/", page(PREVIEW_ITEMS))

    result = run("restore", "nightly", "--into", "staging", "--preview")

    assert result.exit_code == 0, result.output
    assert api.body("POST", RESTORES)["mode"] == "preview"
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Preview 9 of snapshot nightly into staging is completed; it would do: "
        "2 to create, 1 to update, 1 unchanged, 1 to skip, 1 in conflict."
    )
    table = [line.split() for line in lines[2:8]]
    assert table[0] == ["ACTION", "RESULT", "KIND", "NAMESPACE", "NAME", "MESSAGE"]
    assert table[1] == ["create", "planned", "v1", "Namespace", "-", "shop-copy", "-"]
    assert table[2] == ["create", "planned", "v1", "ConfigMap", "shop-copy<-shop", "settings", "-"]
    assert table[3] == [
        "update",
        "planned",
        "apps/v1",
        "Deployment",
        "shop-copy<-shop",
        "web",
        "2",
        "fields",
        "change",
    ]
    assert table[4][:6] == ["conflict", "planned", "v1", "Service", "shop-copy<-shop", "web"]
    assert "nodePort 30080 is taken in the target" in lines[6]
    assert "token" not in result.stdout  # unchanged: counted, not listed
    assert "1 unchanged object not listed." in result.stderr
    assert lines[-3:] == [
        "apps/v1 Deployment shop-copy<-shop/web:",
        "  spec.replicas: 2 -> 3",
        '  metadata.labels.tier: (none) -> "web"',
    ]
    assert "Nothing was changed. `flotilla restores confirm 9`" in result.stderr
    assert ("GET", f"{OPERATIONS}50/") in api.calls()


def test_restore_wait_ending_partial_prints_the_report_and_exits_9(
    run: Callable[..., Result], api: FakeApi
) -> None:
    api.on("POST", RESTORES, restore_json(status="pending", operation=restore_op()), status=202)
    api.on("GET", f"{OPERATIONS}50/", restore_op("succeeded", progress=100))
    counts = {"created": 8, "updated": 0, "unchanged": 0, "skipped": 0, "conflict": 0, "failed": 2}
    api.on("GET", f"{RESTORES}9/", restore_json(status="partial", counts=counts))
    failed = item(
        9,
        "Ingress",
        "web",
        "create",
        "failed",
        api_version="networking.k8s.io/v1",
        message="admission webhook denied the request: host taken",
    )
    api.on("GET", f"{RESTORES}9/items/", page([item(1, "ConfigMap", "settings", "create"), failed]))

    result = run("restore", "nightly", "--into", "staging", "--wait")

    assert_error(
        result, 9, "restore 9 of snapshot nightly into staging ended partial; 2 of 10 objects failed"
    )
    assert "flotilla restores report 9 --result failed" in result.stderr
    assert result.stdout.splitlines()[0] == (
        "Restore 9 of snapshot nightly into staging is partial; it did: 8 created, 2 failed."
    )
    assert "admission webhook denied the request: host taken" in result.stdout


def test_restore_wait_json_prints_the_restore_and_its_items(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", RESTORES, restore_json(status="pending", operation=restore_op()), status=202)
    api.on("GET", f"{OPERATIONS}50/", restore_op("failed", error="target cluster staging is unreachable"))
    api.on("GET", f"{RESTORES}9/", restore_json(status="failed", reason="TargetUnreachable"))
    api.on("GET", f"{RESTORES}9/items/", page([]))

    result = run("-o", "json", "restore", "nightly", "--into", "8", "--wait")

    assert result.exit_code == 9
    body = json.loads(result.stdout)
    assert (body["restore"]["status"], body["items"]) == ("failed", [])
    assert "(TargetUnreachable): target cluster staging is unreachable" in result.stderr


# --- restores -----------------------------------------------------------------------------------


def test_restores_list_and_get(run: Callable[..., Result], api: FakeApi) -> None:
    seen: list[httpx.QueryParams] = []

    def listing(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        return httpx.Response(
            200, json=page([restore_json(), restore_json(id=10, mode="preview", counts={})])
        )

    api.on_handler("GET", RESTORES, listing)

    listed = run("restores", "list", "--snapshot", "nightly", "--into", "staging", "--status", "completed")
    assert listed.exit_code == 0, listed.output
    assert (seen[0]["snapshot"], seen[0]["target"], seen[0]["status"]) == ("5", "8", "completed")
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["ID", "SNAPSHOT", "INTO", "MODE", "STATUS", "OBJECTS", "CREATED"]
    assert rows[1][:7] == ["9", "nightly", "staging", "restore", "completed", "3", "created"]

    shown = run("restores", "get", "9")
    assert shown.exit_code == 0, shown.output
    assert "namespaces shop->shop-copy; existing objects: skip" in shown.stdout

    assert_error(run("restores", "get", "nine"), 2, "is not a restore id")
    assert_error(run("restores", "get", "99"), 5, "no restore with id 99")


def test_report_pages_through_every_item_with_filters(run: Callable[..., Result], api: FakeApi) -> None:
    seen: list[httpx.QueryParams] = []
    first = [
        item(i, "ConfigMap", f"cm-{i}", "create", "failed", message="quota exceeded") for i in range(1, 201)
    ]

    def items(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        if request.url.params.get("page") == "2":
            return httpx.Response(
                200,
                json={
                    "count": 201,
                    "next": None,
                    "previous": None,
                    "results": [item(201, "Secret", "s", "create", "failed")],
                },
            )
        return httpx.Response(
            200,
            json={
                "count": 201,
                "next": f"{SERVER}{RESTORES}9/items/?page=2&result=failed",
                "previous": None,
                "results": first,
            },
        )

    api.on_handler("GET", f"{RESTORES}9/items/", items)

    result = run("-o", "json", "restores", "report", "9", "--result", "failed", "--kind", "ConfigMap")

    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 201
    assert (seen[0]["result"], seen[0]["kind"]) == ("failed", "ConfigMap")

    table = run("restores", "report", "9", "--result", "failed")
    assert table.exit_code == 0, table.output
    assert len(table.stdout.splitlines()) == 202  # the header and every row
    refused = run("restores", "report", "9", "--result", "broken")
    assert refused.exit_code == 2
    assert "Invalid value for '--result'" in refused.stderr


def test_confirm_restores_a_preview(run: Callable[..., Result], api: FakeApi) -> None:
    api.on(
        "POST",
        f"{RESTORES}9/confirm/",
        restore_json(id=11, status="pending", operation=restore_op()),
        status=202,
    )
    api.on("GET", f"{OPERATIONS}50/", restore_op("succeeded", progress=100))
    api.on("GET", f"{RESTORES}11/", restore_json(id=11))
    api.on("GET", f"{RESTORES}11/items/", page([item(1, "ConfigMap", "settings", "create")]))

    result = run("restores", "confirm", "9", "--wait")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "Restore 11 of snapshot nightly into staging is completed; it did: 3 created."
    )
    assert_error(run("restores", "confirm", "12"), 5, "no restore with id 12")


# --- storage ------------------------------------------------------------------------------------


def test_storage_add_s3_reads_the_secret_from_stdin(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", LOCATIONS, location(), status=201)

    result = run(
        "storage",
        "add",
        "backups",
        "--kind",
        "s3",
        "--bucket",
        "flotilla",
        "--endpoint",
        "http://127.0.0.1:9000",
        "--region",
        "us-east-1",
        "--prefix",
        "prod",
        "--access-key",
        "AKIAEXAMPLE",
        "--secret-key-stdin",
        "--default",
        input=SECRET + "\n",
    )

    assert result.exit_code == 0, result.output
    assert api.body("POST", LOCATIONS) == {
        "name": "backups",
        "kind": "s3",
        "bucket": "flotilla",
        "region": "us-east-1",
        "prefix": "prod",
        "endpoint": "http://127.0.0.1:9000",
        "credentials": {"key": "AKIAEXAMPLE", "secret": SECRET},
        "is_default": True,
    }
    assert result.stdout == "Added storage location backups (s3) (the default).\n"
    assert SECRET not in result.output


def test_storage_add_takes_the_keys_from_the_environment(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(storage_cmd.ACCESS_KEY_ENV, "AKIAEXAMPLE")
    monkeypatch.setenv(storage_cmd.SECRET_ENV, SECRET)
    api.on("POST", LOCATIONS, location(kind="libcloud", driver="azure_blobs"), status=201)

    result = run(
        "storage",
        "add",
        "azure",
        "--kind",
        "libcloud",
        "--driver",
        "azure_blobs",
        "--bucket",
        "snaps",
        "--option",
        "secure=true",
    )

    assert result.exit_code == 0, result.output
    body = api.body("POST", LOCATIONS)
    assert body["credentials"] == {"key": "AKIAEXAMPLE", "secret": SECRET}
    assert (body["driver"], body["options"]) == ("azure_blobs", {"secure": "true"})


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--kind", "s3", "--bucket", "b", "--access-key", "AK"], "the secret key is missing"),
        (["--kind", "s3", "--bucket", "b", "--secret-key-stdin"], "give the access key too"),
        (["--kind", "s3", "--access-key", "AK"], "--bucket is needed for a s3 location"),
        (["--kind", "libcloud", "--bucket", "b"], "--driver is needed"),
        (["--kind", "local", "--bucket", "b"], "it takes no --bucket"),
        (["--kind", "s3", "--bucket", "b", "--endpoint", "s3.example.com"], "--endpoint 's3.example.com'"),
        (["--kind", "ftp"], "Invalid value for '--kind'"),
        (["--kind", "s3", "--bucket", "b", "--secret-key", SECRET], "No such option"),
    ],
)
def test_storage_add_refuses_bad_flags_before_sending(
    run: Callable[..., Result], api: FakeApi, flags: list[str], message: str
) -> None:
    result = run("storage", "add", "backups", *flags)

    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert posts(api) == []
    assert SECRET not in result.stdout


def test_storage_add_refused_by_the_storage_saves_nothing(run: Callable[..., Result], api: FakeApi) -> None:
    refused = {
        "error": {
            "code": "invalid",
            "message": "The storage refused the credentials: InvalidAccessKeyId",
            "fields": {"credentials": ["The storage refused the credentials: InvalidAccessKeyId"]},
        }
    }
    api.on("POST", LOCATIONS, refused, status=400)

    result = run(
        "storage",
        "add",
        "backups",
        "--kind",
        "s3",
        "--bucket",
        "b",
        "--access-key",
        "AK",
        "--secret-key-stdin",
        input="wrong\n",
    )

    assert_error(result, 2, "The storage refused the credentials: InvalidAccessKeyId")


def test_storage_list_get_and_update(run: Callable[..., Result], api: FakeApi) -> None:
    listed = run("storage", "list")
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["NAME", "KIND", "WHERE", "REGION", "PREFIX", "DEFAULT", "SNAPSHOTS", "CHECK"]
    assert rows[1] == [
        "backups",
        "s3",
        "flotilla",
        "at",
        "http://127.0.0.1:9000",
        "us-east-1",
        "prod",
        "yes",
        "3",
        "ok",
    ]
    assert rows[2][:5] == ["local", "local", "the", "organisation's", "directory"]

    shown = run("storage", "get", "backups")
    assert shown.exit_code == 0, shown.output
    assert "Credentials:" in shown.stdout and "stored" in shown.stdout

    api.on("PATCH", f"{LOCATIONS}2/", location(prefix="prod2"))
    updated = run(
        "storage",
        "update",
        "backups",
        "--prefix",
        "prod2",
        "--access-key",
        "AK2",
        "--secret-key-stdin",
        input="new-secret\n",
    )
    assert updated.exit_code == 0, updated.output
    assert api.body("PATCH", f"{LOCATIONS}2/") == {
        "prefix": "prod2",
        "credentials": {"key": "AK2", "secret": "new-secret"},
    }
    assert_error(run("storage", "update", "backups"), 2, "nothing to change")


def test_storage_check_exits_9_when_the_storage_does_not_answer(
    run: Callable[..., Result], api: FakeApi
) -> None:
    api.on("POST", f"{LOCATIONS}2/check/", location(), location(check_error="connection refused"))

    good = run("storage", "check", "backups")
    assert good.exit_code == 0, good.output
    assert good.stdout.startswith("Storage location backups answers")

    bad = run("storage", "check", "2")
    assert_error(bad, 9, "storage location backups does not answer: connection refused")


def test_storage_delete(run: Callable[..., Result], api: FakeApi) -> None:
    assert_error(run("storage", "delete", "backups"), 2, "refusing to delete a storage location")
    api.on(
        "DELETE",
        f"{LOCATIONS}2/",
        error("conflict", "3 snapshots are stored in backups: delete them first."),
        httpx.Response(204),
        status=409,
    )

    assert_error(run("storage", "delete", "backups", "--yes"), 6, "3 snapshots are stored in backups")
    deleted = run("storage", "delete", "backups", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout == "Deleted storage location backups.\n"
    assert_error(run("storage", "delete", "nowhere", "--yes"), 5, "no storage location named 'nowhere'")


def test_wait_finds_the_operation_when_the_answer_had_none(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", SNAPSHOTS, snapshot(status="pending"), status=202)
    api.on("GET", f"{SNAPSHOTS}5/", snapshot(status="pending", operation=snap_op()), snapshot())
    api.on("GET", f"{OPERATIONS}40/", snap_op("succeeded", progress=100))

    result = run("snapshots", "create", "demo", "--wait")

    assert result.exit_code == 0, result.output
    assert ("GET", f"{OPERATIONS}40/") in api.calls()
    assert result.stdout.startswith("Snapshot nightly is completed")


def test_storage_add_prompts_for_the_secret_on_a_terminal_without_echoing_it(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage_cmd, "stdin_is_terminal", lambda: True)
    api.on("POST", LOCATIONS, location(), status=201)

    result = run(
        "storage",
        "add",
        "backups",
        "--kind",
        "s3",
        "--bucket",
        "b",
        "--access-key",
        "AK",
        input=SECRET + "\n",
    )

    assert result.exit_code == 0, result.output
    assert api.body("POST", LOCATIONS)["credentials"] == {"key": "AK", "secret": SECRET}
    assert "Secret key" in result.output and SECRET not in result.output
