"""The operations engine under a backlog of waiting operations: does anyone else still get a worker?

Run: .venv/bin/python bench/engine.py [--operations 20] [--waits 4] [--wait 3] [--workers 2]

On a scratch database, with a real worker process (`manage.py worker`, --workers django-q2
workers) and local clusters in a scratch state directory: org "busy" submits --operations
operations that each pause --waits times for --wait seconds; right after, org "other" asks for a
local cluster (1 node) and for a health refresh of the cluster it already runs. Printed: how long the other
org's create and health refresh waited to start, how long until the create was Ready and all the
busy operations were done, and how many tasks found their operation already taken (duplicates).

Two modes run one after the other on the same script (a scripted job kind, tests/engine_support):
- `wait`: each pause is a step returning `Outcome.wait` — what every job does on the engine;
- `sleep`: each pause is slept inside the step — what the loop before the engine did (waits and
  backoffs were `time.sleep` in the task), for the ratio.
Target (issue 9): the other org's create and the health refresh start within seconds, whatever
the backlog.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.benchdb import bench_database  # noqa: E402

SCENARIO = r"""
import json, secrets, time
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_q.models import Task
from django_tenants.utils import schema_context
from clusters.engine import runner
from clusters.models import Cluster, Operation
from clusters.services import clusters as cluster_services
from clusters.services.providers import ensure_local_provider
from config.tasks import enqueue
from tests.factories import actor_for, make_org, owner_of

busy, other = make_org("busy"), make_org("other")
call_command("prepare_clusters", verbosity=0)
def op_of(schema, pk):
    with schema_context(schema):
        return Operation.objects.get(pk=pk)
def create(org, name):
    with schema_context(org.schema_name):
        actor = actor_for(owner_of(org))
        return cluster_services.create_cluster(
            actor, name=name, provider=ensure_local_provider(actor),
            pools=[{{"name": "p", "size": "small", "count": 1}}])
# The other org already runs a cluster, whose health refresh is asked for during the backlog.
steady = create(other, "steady")
while op_of(other.schema_name, steady.operation.pk).is_active:
    time.sleep(0.2)
pause = "wait:{wait}" if "{mode}" == "wait" else "hang:{wait}"
script = [pause] * {waits} + ["done"]
with schema_context(busy.schema_name), transaction.atomic():
    provider = ensure_local_provider(actor_for(owner_of(busy)))
    holder = Cluster.objects.create(name="scripted", provider=provider, version="1.36.1",
                                    external_name=secrets.token_hex(6))
    ids = []
    for n in range({operations}):
        op = Operation.objects.create(cluster=holder, subject_type="scripted", subject_id=n, kind="scripted",
                                      params={{"script": script}})
        runner.submit(op)
        ids.append(op.pk)
t0 = time.monotonic()
asked = timezone.now()
requested = create(other, "meanwhile")
with schema_context(other.schema_name):
    before = Cluster.objects.get(pk=steady.cluster.pk).health_checked_at
    health_asked = timezone.now()
    with transaction.atomic():
        enqueue("clusters.tasks.refresh_cluster_health", schema_name=other.schema_name,
                cluster_id=steady.cluster.pk)
    while (Cluster.objects.get(pk=steady.cluster.pk).health_checked_at == before
           and time.monotonic() - t0 < 1800):
        time.sleep(0.1)
    health_at = Cluster.objects.get(pk=steady.cluster.pk).health_checked_at
while op_of(other.schema_name, requested.operation.pk).is_active and time.monotonic() - t0 < 1800:
    time.sleep(0.2)
create_op = op_of(other.schema_name, requested.operation.pk)
with schema_context(busy.schema_name):
    unfinished = Operation.objects.filter(pk__in=ids, status__in=["queued", "running"])
    while unfinished.exists() and time.monotonic() - t0 < 1800:
        time.sleep(0.2)
    done = Operation.objects.filter(pk__in=ids)
    failed = done.exclude(status="succeeded").count()
    last = max(o.finished_at for o in done if o.finished_at)
results = [str(t.result) for t in Task.objects.all()
           if t.args and t.args[0] == "clusters.tasks.run_operation"]
with schema_context(other.schema_name):
    deletions = [
        cluster_services.delete_cluster(actor_for(owner_of(other)), Cluster.objects.get(pk=made.cluster.pk))
        for made in (requested, steady)
    ]
while any(op_of(other.schema_name, d.pk).is_active for d in deletions) and time.monotonic() - t0 < 1800:
    time.sleep(0.2)
print(json.dumps({{
    "create_start": (create_op.started_at - asked).total_seconds(),
    "create_ready": (create_op.finished_at - asked).total_seconds(),
    "create_status": create_op.status,
    "health_start": (health_at - health_asked).total_seconds(),
    "busy_done": (last - asked).total_seconds(),
    "busy_failed": failed,
    "duplicates": results.count("not claimed"),
    "tasks": len(results),
}}))
"""


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="flotilla-bench-engine-") as tmp,
        bench_database(f"bench_engine_{mode}") as url,
    ):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",  # for the scripted job kind
            "FLOTILLA_DATABASE_URL": url,
            "FLOTILLA_LOCAL_STATE_DIR": str(Path(tmp) / "local"),
            "FLOTILLA_WORKERS": str(args.workers),
            "FLOTILLA_OPERATION_STEP_TIMEOUT": "3600",
            "PYTHONUNBUFFERED": "1",
        }
        worker = None
        try:
            subprocess.run(
                [sys.executable, "manage.py", "prepare_database", "-v0"], cwd=ROOT, env=env, check=True
            )
            worker = subprocess.Popen(
                [sys.executable, "manage.py", "worker"],
                cwd=ROOT,
                env=env,
                stdout=(Path(tmp) / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            scenario = SCENARIO.format(
                mode=mode, wait=args.wait, waits=args.waits, operations=args.operations
            )
            setup = subprocess.Popen(
                [sys.executable, "-c", "import django; django.setup()\n" + scenario],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=(Path(tmp) / "scenario.log").open("wb"),
                text=True,
            )
            out, _ = setup.communicate(timeout=3600)
            if setup.returncode:
                print((Path(tmp) / "scenario.log").read_text()[-3000:])
                raise SystemExit(f"{mode}: the scenario failed")
            return dict(json.loads(out.strip().splitlines()[-1]))
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--operations", type=int, default=20)
    parser.add_argument("--waits", type=int, default=4)
    parser.add_argument("--wait", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default="wait,sleep")
    args = parser.parse_args()
    print(
        f"{args.operations} operations of org 'busy', each pausing {args.waits} x {args.wait:g} s, "
        f"on {args.workers} workers; org 'other' creates a local cluster meanwhile"
    )
    rows = {mode: run_mode(mode, args) for mode in args.modes.split(",")}
    print(f"{'':34}" + "".join(f"{m:>12}" for m in rows))
    for key, label in [
        ("create_start", "other org's create: start (s)"),
        ("create_ready", "other org's create: Ready (s)"),
        ("health_start", "health refresh: ran after (s)"),
        ("busy_done", "busy operations all done (s)"),
        ("busy_failed", "busy operations failed"),
        ("tasks", "run_operation tasks"),
        ("duplicates", "duplicate tasks (not claimed)"),
    ]:
        print(
            f"{label:34}"
            + "".join(
                f"{rows[m][key]:>12.1f}" if isinstance(rows[m][key], float) else f"{rows[m][key]:>12}"
                for m in rows
            )
        )
    if "wait" in rows and "sleep" in rows and rows["wait"]["create_start"] > 0:
        print(
            f"create start, sleep / wait: {rows['sleep']['create_start'] / rows['wait']['create_start']:.0f}x"
        )


if __name__ == "__main__":
    main()
