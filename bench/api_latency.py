"""API latency and capacity under an open-loop load, on a realistic org.

Run: .venv/bin/python bench/api_latency.py [--web-processes 2] [--seconds 30] [--step-seconds 10]
     [--server uvicorn|daphne] [--redis] [--root PATH --settings MODULE]
--root measures another checkout (e.g. an older commit, for a before/after); --redis runs the
scale-out layout (a redis-server of its own as broker, channel layer and cache).

Serves the app as scripts/run.sh does (uvicorn, one process per core, config.settings.host) on a
scratch database holding one org with 50 clusters (2 pools, 6 nodes each), 5 members and 10
API tokens, and drives it with vegeta, an open-loop generator: requests leave at a fixed rate
whatever the server does, so the figures are the server's latency, queueing included.

It reports:
- the queries one authenticated request makes (cluster list, one cluster);
- 50 clients at 1 request/s each (50 req/s; list and single reads, round robin over the
  tokens) for --seconds: p50, p99, errors. Target: p99 <= 100 ms, 0 errors;
- the capacity of the cluster list and of a single-cluster read: the highest offered rate
  (stepped up by 25% from 25 req/s, --step-seconds each) at which p99 stays <= 100 ms with
  0 errors.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.benchdb import bench_database  # noqa: E402
from bench.tools import vegeta  # noqa: E402

P99_TARGET_MS = 100.0

PREPARE = r"""
import json, django
django.setup()
from django.core.management import call_command
call_command("prepare_database", verbosity=0)
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context
from django.utils import timezone
from clusters.models import Cluster, Node, NodePool, ProviderAccount
from tests.factories import add_member, make_org, make_token, owner_of

org = make_org("bench")
members = [owner_of(org)] + [add_member(org, role) for role in ("admin", "member", "member", "viewer")]
tokens = [make_token(m)[1] for m in members for _ in range(2)]
now = timezone.now()
with schema_context(org.schema_name):
    account = ProviderAccount.objects.create(name="imported", kind="existing")
    for i in range(50):
        cluster = Cluster.objects.create(
            name=f"cluster-{i:02d}", provider=account, region="local", version="1.36.1",
            status="ready", external_name=f"bench-{i:02d}", observed_version="1.36.1",
            conditions=[{"type": "Ready", "status": "True", "reason": "", "message": ""}],
            health_checked_at=now,
        )
        for p in range(2):
            NodePool.objects.create(cluster=cluster, name=f"pool-{p}", size="small", count=3,
                                    labels={"tier": f"t{p}"})
            for n in range(3):
                Node.objects.create(cluster=cluster, pool_name=f"pool-{p}", name=f"c{i}-p{p}-n{n}",
                                    ready=True, kubelet_version="1.36.1", cpu="2", memory="4Gi",
                                    internal_ip=f"10.0.{i}.{p * 3 + n}", observed_at=now)
    ids = list(Cluster.objects.values_list("id", flat=True))
client = Client(HTTP_AUTHORIZATION="Bearer " + tokens[0], HTTP_HOST="127.0.0.1")
queries = {}
for name, path in (("list", "/api/v1/clusters/"), ("detail", f"/api/v1/clusters/{ids[0]}/")):
    client.get(path)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    queries[name] = len(ctx.captured_queries)
print(json.dumps({"tokens": tokens, "clusters": ids, "queries": queries}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _targets(path: Path, base: str, tokens: list[str], urls: list[str]) -> Path:
    with path.open("w") as fh:
        for n in range(max(len(tokens), len(urls)) * 4):
            url = urls[n % len(urls)]
            token = tokens[n % len(tokens)]
            fh.write(
                json.dumps(
                    {"method": "GET", "url": base + url, "header": {"Authorization": [f"Bearer {token}"]}}
                )
            )
            fh.write("\n")
    return path


def _attack(targets: Path, rate: float, seconds: float, workers: int) -> dict[str, Any]:
    """Offer `rate` requests/s for `seconds`; vegeta's JSON report."""
    binary = str(vegeta())
    attack = subprocess.Popen(
        [
            binary,
            "attack",
            "-format=json",
            f"-targets={targets}",
            f"-rate={rate:.0f}/1s",
            f"-duration={seconds}s",
            f"-max-workers={workers}",
            "-timeout=10s",
        ],
        stdout=subprocess.PIPE,
    )
    report = subprocess.run(
        [binary, "report", "-type=json"], stdin=attack.stdout, capture_output=True, check=True
    )
    attack.wait()
    return dict(json.loads(report.stdout))


def _summary(report: dict[str, Any]) -> tuple[float, float, float, int, int]:
    lat = report["latencies"]
    codes = report.get("status_codes") or {}
    errors = sum(n for code, n in codes.items() if code != "200")
    return lat["50th"] / 1e6, lat["99th"] / 1e6, lat["max"] / 1e6, int(report["requests"]), errors


def _capacity(targets: Path, step_seconds: float, workers: int) -> tuple[float, list[str]]:
    rate, best, lines = 25.0, 0.0, []
    while rate < 5000:
        p50, p99, _, n, errors = _summary(_attack(targets, rate, step_seconds, workers))
        ok = p99 <= P99_TARGET_MS and errors == 0
        lines.append(f"    {rate:6.0f} req/s: p50 {p50:6.1f} ms, p99 {p99:7.1f} ms, errors {errors}/{n}")
        if not ok:
            break
        best = rate
        rate *= 1.25
    return best, lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--web-processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to serve (default: this one)")
    parser.add_argument("--settings", default="config.settings.host")
    parser.add_argument("--redis", action="store_true", help="Redis as broker, channel layer and cache")
    args = parser.parse_args()
    root = args.root.resolve()

    with bench_database("flotilla_bench_api") as url, tempfile.TemporaryDirectory() as tmp:
        redis_proc = None
        extra = {}
        if args.redis:
            redis_port = _free_port()
            redis_proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--dir",
                    tmp,
                ],
                stdout=subprocess.DEVNULL,
            )
            extra["FLOTILLA_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        env = {
            **extra,
            **os.environ,
            "PYTHONPATH": str(root),
            "FLOTILLA_DATABASE_URL": url,
            "FLOTILLA_DATA_DIR": str(Path(tmp) / "data"),
            "FLOTILLA_LOG_LEVEL": "WARNING",
            "FLOTILLA_DEBUG": "false",
        }
        prepared = subprocess.run(
            [sys.executable, "-c", PREPARE],
            cwd=root,
            env={**env, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
            capture_output=True,
            text=True,
        )
        if prepared.returncode != 0:
            raise SystemExit(prepared.stderr)
        data = json.loads(prepared.stdout.strip().splitlines()[-1])
        port = _free_port()
        if args.server == "uvicorn":
            cmd = [
                sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(args.web_processes), "--lifespan", "off",
                "--no-access-log",
            ]  # fmt: skip
        else:
            cmd = [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "config.asgi:application",
            ]
        log = (Path(tmp) / "server.log").open("wb")
        server = subprocess.Popen(
            cmd,
            cwd=root,
            env={**env, "DJANGO_SETTINGS_MODULE": args.settings},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(base + "/login/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            ids = data["clusters"]
            mixed = _targets(
                Path(tmp) / "mixed.json",
                base,
                data["tokens"],
                ["/api/v1/clusters/", *[f"/api/v1/clusters/{ids[0]}/"]],
            )
            listing = _targets(Path(tmp) / "list.json", base, data["tokens"], ["/api/v1/clusters/"])
            single = _targets(
                Path(tmp) / "single.json", base, data["tokens"], [f"/api/v1/clusters/{i}/" for i in ids]
            )
            _attack(mixed, 20, 5, 50)  # warm up every process
            p50, p99, top, n, errors = _summary(_attack(mixed, 50, args.seconds, 50))
            list_capacity, list_lines = _capacity(listing, args.step_seconds, 200)
            single_capacity, single_lines = _capacity(single, args.step_seconds, 200)
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait(timeout=30)

    kind = f"{args.server} x{args.web_processes if args.server == 'uvicorn' else 1}"
    kind += ", Redis" if args.redis else ", PostgreSQL only"
    print(f"Flotilla API under open-loop load ({kind}, {args.settings}, {root.name}); org of 50 clusters")
    queries = data["queries"]
    print(f"queries per request: cluster list {queries['list']}, one cluster {queries['detail']}")
    print(f"50 clients x 1 req/s for {args.seconds:.0f} s (list + single reads, 10 tokens):")
    print(f"  requests {n}, errors {errors}, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms")
    met = p99 <= P99_TARGET_MS and errors == 0
    print(f"  target p99 <= {P99_TARGET_MS:.0f} ms with 0 errors: {'met' if met else 'missed'}")
    print(f"capacity (highest rate with p99 <= {P99_TARGET_MS:.0f} ms and 0 errors):")
    print(f"  GET /api/v1/clusters/ (50 clusters, page of 50): {list_capacity:.0f} req/s")
    print("\n".join(list_lines))
    print(f"  GET /api/v1/clusters/<id>/: {single_capacity:.0f} req/s")
    print("\n".join(single_lines))


if __name__ == "__main__":
    main()
