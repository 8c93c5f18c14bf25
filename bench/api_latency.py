"""Latency of an authenticated list endpoint under load: median and p99, errors.

Run: .venv/bin/python bench/api_latency.py [--users 50] [--seconds 30] [--wait 0] [--web-workers 1]
Serves the app as scripts/run.sh does (daphne) on a scratch database, or with uvicorn workers
when --web-workers > 1, and drives it with locust (headless) from another process.
Target (issue 2): p99 under 100 ms, zero errors, 50 concurrent clients for 30 s.
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.benchdb import bench_database  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(url: str) -> str:
    env = {**os.environ, "FLOTILLA_DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('prepare_database', verbosity=0)\n"
        "from tests.factories import make_org, add_member, owner_of, make_token\n"
        "org = make_org('bench')\n"
        "[add_member(org, 'viewer') for _ in range(24)]\n"
        "print(make_token(owner_of(org), role='viewer')[1])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--wait", type=float, default=0.0, help="think time of each client between requests")
    parser.add_argument("--web-workers", type=int, default=1)
    args = parser.parse_args()

    with bench_database("flotilla_bench_api") as url, tempfile.TemporaryDirectory() as tmp:
        token = _prepare(url)
        port = _free_port()
        env = {
            **os.environ,
            "FLOTILLA_DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "config.settings.dev",
            "FLOTILLA_DEBUG": "false",
            "FLOTILLA_LOG_LEVEL": "WARNING",
        }
        if args.web_workers > 1:
            server_cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.web_workers),
                "--no-access-log",
            ]
        else:
            server_cmd = [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "config.asgi:application",
            ]
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(server_cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):
                try:
                    httpx.get(base + "/login/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            prefix = str(Path(tmp) / "locust")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    str(ROOT / "bench" / "locust_api.py"),
                    "--headless",
                    "-u",
                    str(args.users),
                    "-r",
                    str(args.users),
                    "-t",
                    f"{args.seconds}s",
                    "--host",
                    base,
                    "--csv",
                    prefix,
                    "--only-summary",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=ROOT,
                env={**os.environ, "BENCH_TOKEN": token, "BENCH_WAIT": str(args.wait)},
                check=False,
                capture_output=True,
            )
            with open(prefix + "_stats.csv") as fh:
                rows = {row["Name"]: row for row in csv.DictReader(fh)}
            with open(prefix + "_failures.csv") as fh:
                failures = [f"{row['Occurrences']} x {row['Error']}" for row in csv.DictReader(fh)]
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.close()
            errors = [
                line
                for line in (Path(tmp) / "server.log").read_text(errors="replace").splitlines()
                if "Error" in line
            ]
            server_errors = errors[-5:]

    row = rows["Aggregated"]
    server_kind = f"uvicorn x{args.web_workers}" if args.web_workers > 1 else "daphne x1"
    print(
        f"GET /api/v1/orgs/members/ (25 members), {args.users} clients, {args.seconds} s, "
        f"think time {args.wait} s, {server_kind}"
    )
    rate = float(row["Requests/s"])
    print(f"requests {row['Request Count']}, failures {row['Failure Count']}, {rate:.1f} req/s")
    slowest = float(row["Max Response Time"])
    print(f"median {row['50%']} ms, p90 {row['90%']} ms, p99 {row['99%']} ms, max {slowest:.0f} ms")
    for failure in failures:
        print(f"  failure: {failure}")
    for line in server_errors:
        print(f"  server: {line}")
    ok = float(row["99%"]) < 100 and int(row["Failure Count"]) == 0
    print(f"target p99 < 100 ms with zero errors: {'meets' if ok else 'misses'}")


if __name__ == "__main__":
    main()
