"""Apps (issue 10): deploy to Available, a fleet deployed at once, and the org-wide list.

Run: .venv/bin/python bench/apps.py list   [--apps 500 --clusters 20 --requests 200 --portal-path P]
     .venv/bin/python bench/apps.py deploy [--repeat 5 --replicas 3 --workers 2]
     .venv/bin/python bench/apps.py fleet  [--apps 50 --clusters 5 --workers 2]
Add --json for the figures as one JSON object on the last line.

Every subcommand runs on a scratch database (bench.benchdb) and drives the real API over HTTP
with a bearer token.
- `list` needs no cluster: 20 cluster rows and 500 app rows (each with its revision and its
  newest operation) are written directly into the database. It counts the database queries of
  one request of the Apps API list (default page, and page_size=500) and of the portal Apps page
  (/o/<slug>/clusters/apps/, skipped when it does not exist) at 50 and at 500 apps — they must
  be the same — then serves the app as scripts/run.sh does (uvicorn, config.settings.host) and
  times --requests sequential requests of each. Target: p99 < 200 ms, a fixed query count.
- `deploy` and `fleet` run daphne and a real worker process (`manage.py worker`, --workers
  django-q2 workers) with local clusters (kwok control planes) in a scratch state directory;
  they need the Kubernetes binaries in ~/.cache/flotilla/bin.
  `deploy`: a --replicas app deployed --repeat times to a 3-node local cluster, request →
  Available (median, p90, max; target < 10 s), broken down from the operation's own timestamps:
  request → rollout claimed by a worker, claimed → objects applied, applied → Available.
  `fleet`: --apps apps requested at once across --clusters local clusters of one org; right
  after, another org deploys a one-replica app to its own cluster. Printed: time until all are
  Available, failures (target 0), and how long the other org's rollout waited for a worker
  (target: seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.benchdb import bench_database  # noqa: E402

P99_TARGET_MS = 200.0
DEPLOY_TARGET_S = 10.0
SETTLED = {"available", "failed", "degraded", "deleted"}
APPS_API = "/api/v1/clusters/apps/"
PORTAL_APPS = "/o/bench/clusters/apps/"  # the org the list bench makes is "bench"

# --- list ------------------------------------------------------------------------------------

LIST_PREPARE = r"""
import json, django
django.setup()
from django.core.management import call_command
call_command("prepare_database", verbosity=0)
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context
from django.utils import timezone
from clusters.choices import AppStatus, OperationStatus
from clusters.models import App, AppRevision, Cluster, Operation, ProviderAccount
from clusters.workloads.spec import parse_app_spec
from tests.factories import make_org, make_token, owner_of

APPS, CLUSTERS, FIRST = {apps}, {clusters}, {first}
org = make_org("bench")
owner = owner_of(org)
token = make_token(owner)[1]
now = timezone.now()
# A realistic spec: the JSON each row carries is most of the page's bytes.
spec = parse_app_spec({{
    "image": "registry.example.test:5000/shop/web:1.27.3", "replicas": 3,
    "env": {{"MODE": "production", "LOG_LEVEL": "info", "WORKERS": "4"}},
    "ports": [8080, {{"port": 9090, "name": "metrics"}}],
    "resources": {{
        "cpu_request": "250m", "cpu_limit": "1", "memory_request": "256Mi", "memory_limit": "512Mi",
    }},
    "readiness": "http:/healthz:8080", "liveness": "tcp:8080",
    "labels": {{"team": "shop", "tier": "web"}},
}}).to_dict()
with schema_context(org.schema_name):
    account = ProviderAccount.objects.create(name="imported", kind="existing")
    clusters = [
        Cluster.objects.create(
            name=f"cluster-{{i:02d}}", provider=account, region="local", version="1.36.1", status="ready",
            external_name=f"bench-{{i:02d}}", observed_version="1.36.1", health_checked_at=now,
        )
        for i in range(CLUSTERS)
    ]

def add_apps(start, stop):
    with schema_context(org.schema_name):
        rows = []
        for n in range(start, stop):
            # One app in ten is mid-rollout: its newest operation is still running.
            busy = n % 10 == 0
            rows.append(App(
                cluster=clusters[n % CLUSTERS], namespace=f"team-{{n % 4}}", name=f"app-{{n:03d}}",
                status=AppStatus.DEPLOYING if busy else AppStatus.AVAILABLE, spec=spec,
                selector={{"flotilla.dev/app": f"app-{{n:03d}}"}}, revision=1, desired_replicas=3,
                updated_replicas=1 if busy else 3, ready_replicas=2 if busy else 3,
                available_replicas=2 if busy else 3, observed_at=now, created_by=owner.user.email,
            ))
        apps = App.objects.bulk_create(rows)
        AppRevision.objects.bulk_create([
            AppRevision(app=a, number=1, kind="deploy", spec=spec, changes=["deployed"],
                        created_by=owner.user.email)
            for a in apps
        ])
        running = {{a.pk for a in apps if a.status == AppStatus.DEPLOYING}}
        Operation.objects.bulk_create([
            Operation(
                cluster=a.cluster, subject_type="app", subject_id=a.pk, kind="app_rollout",
                status=OperationStatus.RUNNING if a.pk in running else OperationStatus.SUCCEEDED,
                params={{"revision": 1}}, step="3 of 3 replicas updated, 3 available", progress=100,
                started_at=now, finished_at=None if a.pk in running else now,
                requested_by=owner.user.email,
            )
            for a in apps
        ])

api = Client(HTTP_AUTHORIZATION="Bearer " + token, HTTP_HOST="127.0.0.1")
portal = Client(HTTP_HOST="127.0.0.1")
portal.force_login(owner.user)
paths = {{
    "api_default": (api, "{api}"),
    "api_500": (api, "{api}?page_size=500"),
    "portal": (portal, "{portal}"),
}}

import orgs.crypto
decrypted = [0]
_decrypt = orgs.crypto.decrypt
def counting_decrypt(token):
    decrypted[0] += 1
    return _decrypt(token)
orgs.crypto.decrypt = counting_decrypt

def measure():
    out = {{}}
    for name, (client, path) in paths.items():
        client.get(path)
        decrypted[0] = 0
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path)
        rows = None
        if response.status_code == 200 and name.startswith("api"):
            body = response.json()
            rows = len(body["results"])
        out[name] = {{"status": response.status_code, "queries": len(ctx.captured_queries), "rows": rows,
                      "decryptions": decrypted[0]}}
    return out

add_apps(0, FIRST)
queries = {{FIRST: measure()}}
add_apps(FIRST, APPS)
queries[APPS] = measure()
from django.conf import settings
print(json.dumps({{
    "token": token, "cookies": {{k: v.value for k, v in portal.cookies.items()}}, "queries": queries,
    "keys": list(settings.FLOTILLA_ENCRYPTION_KEYS), "secret_key": settings.SECRET_KEY,
}}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _django(env: dict[str, str], script: str) -> str:
    """Run a script in a Django process of its own; its last line of output."""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def _served(cmd: list[str], env: dict[str, str], log: Path, probe: str) -> Iterator[str]:
    """Run a web server until the block ends; yield its base URL once it answers."""
    port = _free_port()
    argv = [part.replace("{port}", str(port)) for part in cmd]
    with log.open("wb") as out:
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(base + probe, timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            yield base
        except Exception:
            # An unexpected failure (not a figure that missed): the server's own account helps.
            tail = log.read_text(errors="replace")[-3000:]
            print(f"--- {log.name}, last lines ---\n{tail}", file=sys.stderr)
            raise
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def _time_requests(client: httpx.Client, path: str, count: int) -> dict[str, float]:
    """`count` sequential GETs of `path`: latency percentiles (ms) and the answer's size."""
    latencies: list[float] = []
    size = 0
    for _ in range(count):
        start = time.perf_counter()
        response = client.get(path)
        latencies.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
    return {
        "p50_ms": statistics.median(latencies),
        "p90_ms": _percentile(latencies, 90),
        "p99_ms": _percentile(latencies, 99),
        "max_ms": max(latencies),
        "requests": count,
        "kib": size / 1024,
    }


def run_list(args: argparse.Namespace) -> dict[str, Any]:
    """The org-wide Apps API list and portal page: queries at two sizes, then latency."""
    first = min(50, args.apps)
    with bench_database("flotilla_bench_apps_list") as url, tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "FLOTILLA_DATABASE_URL": url,
            "FLOTILLA_DATA_DIR": str(Path(tmp) / "data"),
            "FLOTILLA_LOG_LEVEL": "WARNING",
            "FLOTILLA_DEBUG": "false",
        }
        script = LIST_PREPARE.format(
            apps=args.apps, clusters=args.clusters, first=first, api=APPS_API, portal=args.portal_path
        )
        data = json.loads(_django({**env, "DJANGO_SETTINGS_MODULE": "config.settings.test"}, script))
        queries = {int(k): v for k, v in data["queries"].items()}
        portal_exists = queries[args.apps]["portal"]["status"] == 200
        cmd = [
            sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
            "--port", "{port}", "--workers", str(args.web_processes), "--lifespan", "off",
            "--no-access-log",
        ]  # fmt: skip
        # The rows were written under the test settings' key: the served app must open them too.
        served_env = {
            **env,
            "DJANGO_SETTINGS_MODULE": "config.settings.host",
            "FLOTILLA_ENCRYPTION_KEYS": ",".join(data["keys"]),
            # ...and the session signed under its secret key must still be valid.
            "FLOTILLA_SECRET_KEY": data["secret_key"],
            "FLOTILLA_STATIC_ROOT": str(Path(tmp) / "static"),
        }
        # Portal pages name their assets through the static manifest, as scripts/run.sh builds it.
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=served_env,
            check=True,
        )
        latency: dict[str, dict[str, float]] = {}
        with _served(cmd, served_env, Path(tmp) / "server.log", "/login/") as base:
            api = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {data['token']}"}, timeout=30
            )
            portal = httpx.Client(base_url=base, cookies=data["cookies"], timeout=30)
            targets: list[tuple[str, httpx.Client, str]] = [
                ("api_default", api, APPS_API),
                ("api_500", api, APPS_API + "?page_size=500"),
            ]
            if portal_exists:
                targets.append(("portal", portal, args.portal_path))
            for name, client, path in targets:
                _time_requests(client, path, 20)  # warm every web process
                latency[name] = _time_requests(client, path, args.requests)
            api.close()
            portal.close()
    return {
        "apps": args.apps,
        "clusters": args.clusters,
        "web_processes": args.web_processes,
        "queries": queries,
        "portal_exists": portal_exists,
        "portal_path": args.portal_path,
        "latency": latency,
    }


def print_list(result: dict[str, Any]) -> None:
    """The list figures as text."""
    apps, queries = result["apps"], result["queries"]
    small = min(queries)
    print(
        f"Apps list: {apps} apps across {result['clusters']} clusters "
        f"(uvicorn x{result['web_processes']}, config.settings.host)"
    )
    labels = {
        "api_default": f"GET {APPS_API} (default page)",
        "api_500": f"GET {APPS_API}?page_size=500",
        "portal": f"portal {result['portal_path']}",
    }
    for name, label in labels.items():
        at_small, at_big = queries[small][name], queries[apps][name]
        if name == "portal" and not result["portal_exists"]:
            print(f"  {label}: HTTP {at_big['status']} — the page does not exist on this branch, skipped")
            continue
        same = "same" if at_small["queries"] == at_big["queries"] else "GROWS"
        rows = f", {at_big['rows']} rows a page" if at_big["rows"] is not None else ""
        rows += f", {at_small['decryptions']} / {at_big['decryptions']} decryptions"
        print(
            f"  {label}: queries {at_small['queries']} at {small} apps, "
            f"{at_big['queries']} at {apps} ({same}){rows}"
        )
        lat = result["latency"].get(name)
        if lat:
            met = "met" if lat["p99_ms"] < P99_TARGET_MS else "missed"
            print(
                f"    {lat['requests']:.0f} sequential requests: p50 {lat['p50_ms']:.1f} ms, "
                f"p90 {lat['p90_ms']:.1f} ms, "
                f"p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms, {lat['kib']:.0f} KiB "
                f"(target p99 < {P99_TARGET_MS:.0f} ms: {met})"
            )


# --- deploy and fleet: a served app, a worker and local clusters ------------------------------

SETUP = r"""
import django
django.setup()
import json
from django.core.management import call_command
call_command("prepare_database", verbosity=0)
from tests.factories import make_org, make_token, owner_of
tokens = {{}}
for slug in {slugs!r}:
    org = make_org(slug)
    org.max_clusters = 100
    org.max_nodes = 1000
    org.save()
    tokens[slug] = make_token(owner_of(org))[1]
call_command("prepare_clusters", verbosity=0)
print(json.dumps(tokens))
"""

# The operation's own timestamps: request (created), claimed by a worker (started), objects
# applied (the step's event), Available (finished).
TIMELINE = r"""
import django
django.setup()
import json
from django_tenants.utils import schema_context
from clusters.models import ClusterEvent, Operation
from orgs.models import Organization
out = {{}}
for slug, ids in {wanted!r}.items():
    with schema_context(Organization.objects.get(slug=slug).schema_name):
        for op in Operation.objects.filter(pk__in=ids):
            applied = (ClusterEvent.objects.filter(operation=op, message__contains="Applied revision")
                       .order_by("created_at").values_list("created_at", flat=True).first())
            def since(t):
                return None if t is None else (t - op.created_at).total_seconds()
            out[f"{{slug}}:{{op.pk}}"] = {{
                "status": op.status, "claimed": since(op.started_at), "applied": since(applied),
                "finished": since(op.finished_at), "attempts": op.attempts, "error": op.error[:300],
            }}
print(json.dumps(out))
"""


class Site:
    """A served Flotilla with a worker, on a scratch database and a scratch local-cluster state."""

    def __init__(self, base: str, tokens: dict[str, str], env: dict[str, str]) -> None:
        self.base = base
        self.env = env
        self.clients = {
            slug: httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            for slug, token in tokens.items()
        }

    def timeline(self, wanted: dict[str, list[int]]) -> dict[str, dict[str, Any]]:
        """Each operation's timestamps, in seconds since it was requested."""
        return dict(json.loads(_django(self.env, TIMELINE.format(wanted=wanted))))


@contextmanager
def _site(name: str, slugs: list[str], workers: int, max_clusters: int) -> Iterator[Site]:
    """Serve Flotilla (daphne) with a worker process on a scratch database; clean up every local
    cluster it started, whatever happens."""
    from clusters.local.runtime import LocalRuntime

    with bench_database(name) as url, tempfile.TemporaryDirectory(prefix="fl-bench-apps-") as tmp:
        state = Path(tmp) / "kwok"
        env = {
            **os.environ,
            "FLOTILLA_DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "config.settings.dev",
            "FLOTILLA_DEBUG": "false",
            "FLOTILLA_LOG_LEVEL": "WARNING",
            "FLOTILLA_WORKERS": str(workers),
            "FLOTILLA_LOCAL_STATE_DIR": str(state),
            "FLOTILLA_LOCAL_MAX_CLUSTERS": str(max(max_clusters, 8)),
            "FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG": str(max(max_clusters, 3)),
            "PYTHONUNBUFFERED": "1",
        }
        tokens = json.loads(_django(env, SETUP.format(slugs=slugs)))
        worker_log = (Path(tmp) / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=ROOT,
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "config.asgi:application"]
        site: Site | None = None
        try:
            with _served(cmd, env, Path(tmp) / "web.log", "/login/") as base:
                site = Site(base, tokens, env)
                yield site
        except BaseException:
            tail = (Path(tmp) / "worker.log").read_text(errors="replace")[-3000:]
            print(f"--- worker.log, last lines ---\n{tail}", file=sys.stderr)
            raise
        finally:
            if site is not None:
                for client in site.clients.values():
                    client.close()
            worker.terminate()
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
            worker_log.close()
            if state.exists():
                runtime = LocalRuntime(root=state)
                for cluster in runtime.list_clusters():
                    runtime.delete(cluster)


def _poll(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


def _ready_cluster(client: httpx.Client, name: str, nodes: int) -> int:
    """Create a local cluster through the API and wait until it is Ready."""
    response = client.post(
        "/api/v1/clusters/", json={"name": name, "pools": [{"name": "pool", "size": "small", "count": nodes}]}
    )
    if response.status_code >= 300:
        raise SystemExit(f"create cluster {name}: {response.status_code} {response.text[:500]}")
    cluster_id = int(response.json()["cluster"]["id"])

    def ready() -> bool:
        cluster = client.get(f"/api/v1/clusters/{cluster_id}/").json()
        if cluster["status"] in ("error", "degraded", "deleted"):
            raise SystemExit(f"cluster {name}: {cluster['status']}: {json.dumps(cluster)[:1500]}")
        return bool(cluster["status"] == "ready" and not cluster["active_operation"])

    if not _poll(ready, 300, 0.3):
        raise SystemExit(f"cluster {name} not Ready after 300 s")
    return cluster_id


def _deploy(client: httpx.Client, cluster_id: int, name: str, replicas: int) -> tuple[int, int, float]:
    """Ask for an app; (app id, operation id, monotonic time the request was sent)."""
    body = {"cluster": cluster_id, "name": name, "image": "nginx:1.27", "replicas": replicas, "ports": [80]}
    start = time.monotonic()
    response = client.post(APPS_API, json=body)
    if response.status_code != 202:
        raise SystemExit(f"deploy {name}: {response.status_code} {response.text[:500]}")
    data = response.json()
    return int(data["app"]["id"]), int(data["operation"]["id"]), start


def _settled(client: httpx.Client, app_id: int) -> str | None:
    app = client.get(f"{APPS_API}{app_id}/").json()
    operation = app.get("operation") or {}
    if app["status"] in SETTLED and operation.get("status") not in ("queued", "running"):
        return str(app["status"])
    return None


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p90": _percentile(values, 90),
        "max": max(values),
        "min": min(values),
    }


def run_deploy(args: argparse.Namespace) -> dict[str, Any]:
    """A --replicas app deployed --repeat times to one local cluster: request → Available."""
    with _site("flotilla_bench_apps_deploy", ["bench"], args.workers, 2) as site:
        client = site.clients["bench"]
        cluster_id = _ready_cluster(client, "deploy", args.nodes)
        totals: list[float] = []
        statuses: list[str] = []
        operations: list[int] = []
        for i in range(args.repeat):
            app_id, operation_id, start = _deploy(client, cluster_id, f"web-{i}", args.replicas)
            outcome: list[str] = []

            def done(app_id: int = app_id, outcome: list[str] = outcome) -> bool:
                status = _settled(client, app_id)
                if status is not None:
                    outcome.append(status)
                return status is not None

            settled = _poll(done, 300)
            totals.append(time.monotonic() - start)
            statuses.append(outcome[0] if settled else "timeout")
            operations.append(operation_id)
        timeline = site.timeline({"bench": operations})
    steps = [timeline[f"bench:{op}"] for op in operations]
    phases: dict[str, list[float]] = {"claimed": [], "applied": [], "available": []}
    for step in steps:
        if None in (step["claimed"], step["applied"], step["finished"]):
            continue
        phases["claimed"].append(step["claimed"])
        phases["applied"].append(step["applied"] - step["claimed"])
        phases["available"].append(step["finished"] - step["applied"])
    return {
        "repeat": args.repeat,
        "replicas": args.replicas,
        "nodes": args.nodes,
        "workers": args.workers,
        "total": _spread(totals),
        "runs": totals,
        "failed": [s for s in statuses if s != "available"],
        "phases": {name: _spread(values) for name, values in phases.items() if values},
    }


def print_deploy(result: dict[str, Any]) -> None:
    """The deploy figures as text."""
    total = result["total"]
    met = "met" if total["max"] < DEPLOY_TARGET_S and not result["failed"] else "missed"
    print(
        f"Deploy request -> Available, {result['replicas']}-replica app "
        f"on a local cluster of {result['nodes']} nodes "
        f"({result['repeat']} runs, {result['workers']} workers):"
    )
    print(
        f"  median {total['median']:.2f} s, p90 {total['p90']:.2f} s, max {total['max']:.2f} s, "
        f"failed {len(result['failed'])} {result['failed'] or ''}  (target < {DEPLOY_TARGET_S:.0f} s: {met})"
    )
    labels = {
        "claimed": "request -> rollout claimed",
        "applied": "claimed -> objects applied",
        "available": "applied -> Available",
    }
    for name, label in labels.items():
        if name in result["phases"]:
            phase = result["phases"][name]
            print(
                f"    {label:28} median {phase['median']:.2f} s, "
                f"p90 {phase['p90']:.2f} s, max {phase['max']:.2f} s"
            )


def run_fleet(args: argparse.Namespace) -> dict[str, Any]:
    """--apps apps at once across --clusters clusters of one org, and another org meanwhile."""
    with _site("flotilla_bench_apps_fleet", ["fleet", "other"], args.workers, args.clusters + 1) as site:
        fleet, other = site.clients["fleet"], site.clients["other"]
        clusters = [_ready_cluster(fleet, f"fleet-{i}", args.nodes) for i in range(args.clusters)]
        other_cluster = _ready_cluster(other, "steady", 1)
        start = time.monotonic()
        with ThreadPoolExecutor(min(args.apps, 25)) as pool:
            requested = list(
                pool.map(
                    lambda n: _deploy(fleet, clusters[n % len(clusters)], f"app-{n:02d}", args.replicas),
                    range(args.apps),
                )
            )
        asked_all = time.monotonic() - start
        # Another org asks for a rollout behind the whole backlog.
        other_app, other_op, other_start = _deploy(other, other_cluster, "meanwhile", 1)
        other_status: list[str] = []
        other_done: list[float] = []
        pending = {app_id for app_id, _, _ in requested}
        finished: dict[int, tuple[str, float]] = {}

        def everything_settled() -> bool:
            if not other_status:
                status = _settled(other, other_app)
                if status is not None:
                    other_status.append(status)
                    other_done.append(time.monotonic() - other_start)
            page = fleet.get(APPS_API, params={"page_size": 200}).json()["results"]
            for app in page:
                operation = app.get("operation") or {}
                if (
                    app["id"] in pending
                    and app["status"] in SETTLED
                    and operation.get("status") not in ("queued", "running")
                ):
                    pending.discard(app["id"])
                    finished[app["id"]] = (app["status"], time.monotonic() - start)
            return not pending and bool(other_status)

        _poll(everything_settled, args.timeout, 0.5)
        all_done = max((t for _, t in finished.values()), default=float("nan"))
        timeline = site.timeline({"fleet": [op for _, op, _ in requested], "other": [other_op]})
    fleet_steps = [timeline[f"fleet:{op}"] for _, op, _ in requested]
    claims = [s["claimed"] for s in fleet_steps if s["claimed"] is not None]
    other_step = timeline[f"other:{other_op}"]
    return {
        "apps": args.apps,
        "clusters": args.clusters,
        "replicas": args.replicas,
        "workers": args.workers,
        "requests_sent_s": asked_all,
        "all_available_s": all_done,
        "available": sum(1 for s, _ in finished.values() if s == "available"),
        "failed": sorted(s for s, _ in finished.values() if s != "available"),
        "unsettled": len(pending),
        "errors": sorted({s["error"] for s in fleet_steps if s["error"]})[:5],
        "fleet_claim_wait": _spread(claims) if claims else None,
        "other_claim_wait_s": other_step["claimed"],
        "other_available_s": other_done[0] if other_done else None,
        "other_status": other_status[0] if other_status else "timeout",
    }


def print_fleet(result: dict[str, Any]) -> None:
    """The fleet figures as text."""
    print(
        f"{result['apps']} apps x {result['replicas']} replicas requested at once "
        f"across {result['clusters']} "
        f"local clusters of one org, {result['workers']} workers:"
    )
    print(f"  all {result['apps']} requests answered in {result['requests_sent_s']:.1f} s")
    print(
        f"  all Available after {result['all_available_s']:.1f} s; available {result['available']}, "
        f"failed {len(result['failed'])} {result['failed'] or ''}, "
        f"unsettled {result['unsettled']}  (target: 0 failed)"
    )
    for error in result["errors"]:
        print(f"    error: {error}")
    wait = result["fleet_claim_wait"]
    if wait:
        print(f"  fleet rollouts, request -> claimed: median {wait['median']:.1f} s, max {wait['max']:.1f} s")
    claimed = result["other_claim_wait_s"]
    print(
        "  other org's rollout (behind the backlog): waited "
        + (f"{claimed:.2f} s" if claimed is not None else "(never claimed)")
        + " for a worker, "
        + (
            f"Available after {result['other_available_s']:.1f} s"
            if result["other_available_s"] is not None
            else result["other_status"]
        )
        + "  (target: seconds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="also print the figures as JSON (last line)")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", parents=[common], help="the org-wide Apps API list and portal page")
    listing.add_argument("--apps", type=int, default=500)
    listing.add_argument("--clusters", type=int, default=20)
    listing.add_argument("--requests", type=int, default=200)
    listing.add_argument("--web-processes", type=int, default=os.cpu_count() or 1)
    listing.add_argument("--portal-path", default=PORTAL_APPS, help="the portal page to measure")
    deploy = sub.add_parser("deploy", parents=[common], help="deploy request -> Available on a local cluster")
    deploy.add_argument("--repeat", type=int, default=5)
    deploy.add_argument("--replicas", type=int, default=3)
    deploy.add_argument("--nodes", type=int, default=3)
    deploy.add_argument("--workers", type=int, default=2)
    fleet = sub.add_parser("fleet", parents=[common], help="many apps deployed at once across clusters")
    fleet.add_argument("--apps", type=int, default=50)
    fleet.add_argument("--clusters", type=int, default=5)
    fleet.add_argument("--replicas", type=int, default=2)
    fleet.add_argument("--nodes", type=int, default=2)
    fleet.add_argument("--workers", type=int, default=2)
    fleet.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    runners: dict[
        str, tuple[Callable[[argparse.Namespace], dict[str, Any]], Callable[[dict[str, Any]], None]]
    ] = {
        "list": (run_list, print_list),
        "deploy": (run_deploy, print_deploy),
        "fleet": (run_fleet, print_fleet),
    }
    run, show = runners[args.command]
    result = run(args)
    show(result)
    if args.json:
        print(json.dumps({"command": args.command, **result}, default=str))


if __name__ == "__main__":
    main()
