"""Clusters end to end: API request to Ready, many clusters at once, and reconcile overhead.

Run: .venv/bin/python bench/clusters.py [--nodes 3] [--repeat 3] [--burst 10] [--workers 2]
Serves the app (daphne) and runs the worker (`manage.py worker`, FLOTILLA_WORKERS=--workers) on a scratch
database, with local clusters in a scratch state directory, and drives them through the API.
Targets (issue 4):
- API request to Ready for a local cluster of 3 nodes: under 30 s;
- 10 clusters requested at once with 2 workers: all Ready in under 3 min, none failed;
- one reconcile pass of a Ready cluster: a handful of queries, under 50 ms without Kubernetes calls.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.benchdb import bench_database  # noqa: E402

TERMINAL = {"ready", "error", "degraded", "deleted"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _django(env: dict[str, str], script: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _wait_ready(client: httpx.Client, cluster_id: int, timeout: float = 600) -> tuple[str, float]:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        cluster = client.get(f"/api/v1/clusters/{cluster_id}/").json()
        if cluster["status"] in TERMINAL and not cluster["active_operation"]:
            return cluster["status"], time.monotonic() - start
        time.sleep(0.2)
    return "timeout", timeout


def _create(client: httpx.Client, name: str, nodes: int) -> tuple[int, float]:
    start = time.monotonic()
    response = client.post(
        "/api/v1/clusters/", json={"name": name, "pools": [{"name": "pool", "size": "small", "count": nodes}]}
    )
    response.raise_for_status()
    return int(response.json()["cluster"]["id"]), start


def _delete_all(client: httpx.Client) -> None:
    ids = [c["id"] for c in client.get("/api/v1/clusters/", params={"page_size": 200}).json()["results"]]
    for cluster_id in ids:
        client.delete(f"/api/v1/clusters/{cluster_id}/")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and client.get("/api/v1/clusters/").json()["count"]:
        time.sleep(0.5)


OVERHEAD = """
import cProfile, pstats, time, statistics
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context
from clusters.models import Cluster
from clusters.providers.registry import driver_for
from clusters.services import health, lifecycle

def kube_seconds(profile):
    stats = pstats.Stats(profile)
    return sum(v[3] for k, v in stats.stats.items() if k[2] in ("call_api", "_kwokctl"))

rows = {"reconcile": [], "health": []}
queries = {}
with schema_context("org_bench"):
    cluster = Cluster.objects.select_related("provider").filter(status="ready").first()
    driver = driver_for(cluster.provider)
    for _ in range(11):
        for label in rows:
            profile = cProfile.Profile()
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter()
                profile.enable()
                if label == "reconcile":
                    ctx = lifecycle.Context(cluster, None, "org_bench")
                    assert driver.reconcile(ctx).done
                    assert health.converged(cluster, managed=True).done
                else:
                    health.refresh_cluster_health(cluster.pk)
                profile.disable()
                total = time.perf_counter() - start
            rows[label].append((total, total - kube_seconds(profile)))
            queries[label] = len(captured.captured_queries)
out = []
for label, values in rows.items():
    values = values[1:]  # the first pass warms caches
    out.append(f"{label}:{queries[label]}:{statistics.median(v[0] for v in values)*1000:.1f}:"
               f"{statistics.median(v[1] for v in values)*1000:.1f}")
print(";".join(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with bench_database("flotilla_bench_clusters") as url, tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "FLOTILLA_DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "config.settings.dev",
            "FLOTILLA_DEBUG": "false",
            "FLOTILLA_LOG_LEVEL": "WARNING",
            "FLOTILLA_WORKERS": str(args.workers),
            "FLOTILLA_LOCAL_STATE_DIR": str(Path(tmp) / "kwok"),
            "FLOTILLA_LOCAL_MAX_CLUSTERS": str(max(args.burst + 2, 8)),
        }
        token = _django(
            env,
            "from django.core.management import call_command\n"
            "call_command('prepare_database', verbosity=0)\n"
            "from tests.factories import make_org, owner_of, make_token\n"
            "org = make_org('bench'); org.max_clusters = 100; org.max_nodes = 1000; org.save()\n"
            "call_command('prepare_clusters', verbosity=0)\n"
            "print(make_token(owner_of(org))[1])\n",
        )
        port = _free_port()
        logs = Path(tmp)
        web = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=(logs / "web.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=ROOT,
            env=env,
            stdout=(logs / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        headers = {"Authorization": f"Bearer {token}"}
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30)
        try:
            for _ in range(150):
                try:
                    client.get("/api/v1/orgs/current/")
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)

            single: list[float] = []
            for i in range(args.repeat):
                cluster_id, start = _create(client, f"single-{i}", args.nodes)
                status, _ = _wait_ready(client, cluster_id)
                single.append(time.monotonic() - start)
                if status != "ready":
                    print(f"single-{i}: {status}")
                if i < args.repeat - 1:
                    _delete_all(client)
            overhead = _django(env, OVERHEAD)
            _delete_all(client)

            start = time.monotonic()
            with ThreadPoolExecutor(args.burst) as pool:
                created = list(pool.map(lambda i: _create(client, f"burst-{i}", 2), range(args.burst)))
            with ThreadPoolExecutor(args.burst) as pool:
                outcomes = list(pool.map(lambda c: _wait_ready(client, c[0]), created))
            burst_total = time.monotonic() - start
            failed = [s for s, _ in outcomes if s != "ready"]
            _delete_all(client)
        finally:
            client.close()
            for proc in (worker, web):
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    print(f"API request -> Ready, local cluster of {args.nodes} nodes ({args.repeat} runs):")
    print(
        f"  median {statistics.median(single):.1f} s, min {min(single):.1f} s, max {max(single):.1f} s"
        "  (target < 30 s)"
    )
    print(f"{args.burst} clusters of 2 nodes requested at once, {args.workers} workers:")
    slowest = max(t for _, t in outcomes)
    print(
        f"  all settled in {burst_total:.1f} s (slowest {slowest:.1f} s); failed: {len(failed)} {failed}"
        "  (target: all Ready < 180 s, none failed)"
    )
    print("Reconcile pass of a Ready cluster (median of 10):")
    for part in overhead.split(";"):
        label, queries, total, own = part.split(":")
        print(
            f"  {label:9s} {queries} queries, {total} ms in all, {own} ms without Kubernetes calls"
            "  (target: a handful of queries, < 50 ms)"
        )


if __name__ == "__main__":
    main()
