"""Snapshots and restores at scale, side by side with Velero on the same cluster and objects.

Run: .venv/bin/python bench/snapshots.py [--sizes 10000,100000,300000] [--restore-sizes 10000,100000]
                                         [--velero 20000] [--no-velero]

On a scratch database and scratch state/storage directories, with real local clusters (kwok
control planes): for each N, a source cluster is loaded with N objects (ConfigMaps and Secrets of
about 1 KB, half each, plus the fidelity corpus), then

- Flotilla's snapshot runs as the engine runs it (`run_operation` passes) in a child process of
  its own, whose peak RSS is the figure: objects/s, MB stored, peak RSS;
- "API floor": the same lists read raw through the gateway (pages of 500, no parsing, nothing
  written) — what the API server allows; Flotilla's share is the rest;
- the restore into a fresh, empty cluster (FLOTILLA_RESTORE_CONCURRENCY requests in flight),
  objects/s; its floor is the same objects created by a bare concurrent loop;
- Velero (bench/velero_peer.py: v1.18.3 built from Go modules, run out of the cluster against
  moto's S3) backs up and restores a namespace of --velero ConfigMaps on the same source cluster,
  and Flotilla does the same namespace, so both tools are measured on the same objects.

Targets (issue 11): snapshot >= 5,000 objects/s with no fall-off to 300k; peak RSS <= 256 MiB at
any N; restore >= 1,000 objects/s; snapshot >= 4x Velero's objects/s; restore >= 20x Velero's;
peak RSS <= 1/2 of Velero's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOOR_SAMPLE = 10_000
sys.path.insert(0, str(ROOT))
from bench.benchdb import bench_database  # noqa: E402

# The child that does the measured work (a snapshot or a restore) in its own process, so its
# peak RSS is that of the work alone.
MEASURE = r"""
import json, resource, sys, time
from django_tenants.utils import schema_context
from clusters import kube
from clusters.engine import runner
from clusters.models import Cluster, Operation
from orgs.models import Organization
from snapshots.models import Restore, Snapshot
from snapshots.services import restores, snapshots
from tests.factories import actor_for, owner_of

args = json.loads(sys.argv[1])
org = Organization.objects.get(slug="bench")
actor = actor_for(owner_of(org))
spent = {"api": 0.0}
original = kube.Client.request
def timed(self, *a, **k):
    t = time.perf_counter()
    try:
        return original(self, *a, **k)
    finally:
        spent["api"] += time.perf_counter() - t
kube.Client.request = timed

def drive(operation):
    while True:
        runner.run_operation(operation.pk)
        op = Operation.objects.get(pk=operation.pk)
        if not op.is_active:
            return op
        if op.status == "queued":
            from django.utils import timezone
            time.sleep(max(0.0, (op.next_attempt_at - timezone.now()).total_seconds()))

with schema_context(org.schema_name):
    source = Cluster.objects.get(name=args["source"])
    started = time.perf_counter()
    if args["action"] == "snapshot":
        requested = snapshots.create_snapshot(
            actor, source, name=args["name"], selection=args.get("selection"))
        op = drive(requested.operation)
        seconds = time.perf_counter() - started
        snap = Snapshot.objects.get(pk=requested.snapshot.pk)
        result = {"status": snap.status, "reason": snap.reason, "objects": snap.object_count,
                  "stored_bytes": snap.stored_bytes, "raw_bytes": snap.raw_bytes, "chunks": snap.chunk_count}
    else:
        snap = Snapshot.objects.get(name=args["name"])
        target = Cluster.objects.get(name=args["target"])
        requested = restores.start_restore(actor, snap, target, options=args.get("options"))
        op = drive(requested.operation)
        seconds = time.perf_counter() - started
        done = Restore.objects.get(pk=requested.restore.pk)
        result = {"status": done.status, "reason": done.reason, "counts": done.counts,
                  "objects": done.counts["created"] + done.counts["updated"]}
    result.update(seconds=seconds, api_seconds=spent["api"], operation=op.status, error=op.error,
                  peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(result))
"""

SETUP = r"""
import json, sys
from django.core.management import call_command
from django_tenants.utils import schema_context
from clusters.choices import ClusterStatus
from clusters.models import Cluster
from clusters.services.providers import ensure_local_provider
from orgs.models import Organization
from tests.factories import actor_for, make_org, owner_of

clusters = json.loads(sys.argv[1])
org = Organization.objects.filter(slug="bench").first() or make_org("bench")
with schema_context(org.schema_name):
    provider = ensure_local_provider(actor_for(owner_of(org)))
    for name, (external, kubeconfig) in clusters.items():
        Cluster.objects.update_or_create(name=name, defaults=dict(
            provider=provider, version="1.36.1", external_name=external, status=ClusterStatus.READY,
            kubeconfig=kubeconfig, api_endpoint="local"))
print("ok")
"""


def _child(env: dict[str, str], script: str, payload: dict[str, Any], log: Path) -> dict[str, Any]:
    with log.open("ab") as err:
        done = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()\n" + script, json.dumps(payload)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            check=False,
        )
    if done.returncode:
        print(log.read_text(errors="replace")[-4000:])
        raise SystemExit(f"the child failed: {payload}")
    line = done.stdout.strip().splitlines()[-1]
    return dict(json.loads(line)) if line.startswith("{") else {"out": line}


def _floor_list(kubeconfig: str, namespaces: list[str]) -> tuple[float, int]:
    """The API server's share of a snapshot: every page of the same lists, raw, nothing done."""
    from clusters import kube

    client = kube.connect(kubeconfig, trusted=True)
    started = time.perf_counter()
    count = 0
    for ns in namespaces:
        for plural in ("configmaps", "secrets"):
            token = ""
            while True:
                raw = client.request(
                    "GET",
                    f"/api/v1/namespaces/{ns}/{plural}",
                    query={"limit": 500, "continue": token or None},
                    raw=True,
                )
                page = json.loads(raw)
                count += len(page.get("items") or [])
                token = (page.get("metadata") or {}).get("continue") or ""
                del raw, page
                if not token:
                    break
    return time.perf_counter() - started, count


def _floor_create(kubeconfig: str, namespace: str, count: int, workers: int) -> float:
    """The API server's share of a restore: the same number of ~1 KB creates, bare, concurrent."""
    from concurrent.futures import ThreadPoolExecutor

    from clusters import kube

    client = kube.connect(kubeconfig, trusted=True)
    kube.create(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    body = "x" * 900

    def make(i: int) -> None:
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"f-{i}", "namespace": namespace},
        }
        obj["data"] = {"v": body + str(i)}
        while True:
            try:
                kube.create(client, obj)
                return
            except kube.TooManyRequests:
                time.sleep(0.2)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(make, range(count)))
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.load_objects import load
    from clusters.local import binaries
    from clusters.local.runtime import LocalClusterSpec, LocalRuntime, NodePoolSpec
    from tests.snapshots.corpus import load_corpus

    version = binaries.available_k8s_versions()[0]
    results: dict[str, Any] = {"sizes": {}, "velero": None}
    with (
        tempfile.TemporaryDirectory(prefix="flotilla-bench-snap-") as tmp,
        bench_database("bench_snapshots") as url,
    ):
        work = Path(tmp)
        log = work / "children.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "FLOTILLA_DATABASE_URL": url,
            "FLOTILLA_LOCAL_STATE_DIR": str(work / "local"),
            "FLOTILLA_SNAPSHOT_DIR": str(work / "snapshots"),
            "FLOTILLA_OPERATION_STEP_TIMEOUT": "3600",
            "FLOTILLA_OPERATION_RUN_BUDGET": "3600",
            "PYTHONUNBUFFERED": "1",
        }
        subprocess.run(
            [sys.executable, "manage.py", "prepare_database", "-v0"], cwd=ROOT, env=env, check=True
        )
        runtime = LocalRuntime(root=work / "local")
        started: list[str] = []

        def cluster(name: str) -> str:
            runtime.create(LocalClusterSpec(name, version, (NodePoolSpec("pool", 1),)))
            started.append(name)
            return runtime.kubeconfig(name)

        try:
            for n in args.sizes:
                src = f"src-{n}"
                kubeconfig = cluster(src)
                load_corpus(kubeconfig, "bench")
                per = max(1, n // 2)
                namespaces = [f"load-{i}" for i in range(max(1, n // 50000))]
                t = time.perf_counter()
                for i, ns in enumerate(namespaces):
                    share = per // len(namespaces) + (1 if i < per % len(namespaces) else 0)
                    load(kubeconfig, ns, configmaps=share, secrets=share)
                loaded = time.perf_counter() - t
                tgt = f"dst-{n}"
                target_kubeconfig = cluster(tgt) if n in args.restore_sizes else kubeconfig
                _child(env, SETUP, {src: [src, kubeconfig], tgt: [tgt, target_kubeconfig]}, log)
                snap = _child(env, MEASURE, {"action": "snapshot", "source": src, "name": f"s-{n}"}, log)
                floor_s, floor_n = _floor_list(kubeconfig, namespaces)
                row: dict[str, Any] = {
                    "loaded_seconds": loaded,
                    "snapshot": snap,
                    "list_floor": [floor_s, floor_n],
                }
                print(_line(n, "snapshot", snap, floor_s), flush=True)
                if n in args.restore_sizes:
                    restored = _child(
                        env,
                        MEASURE,
                        {"action": "restore", "source": src, "target": tgt, "name": f"s-{n}"},
                        log,
                    )
                    # The floor's rate from up to FLOOR_SAMPLE bare creates, scaled to the count.
                    sample = min(FLOOR_SAMPLE, restored["objects"])
                    floor_c = _floor_create(
                        target_kubeconfig,
                        "floor",
                        sample,
                        int(os.environ.get("FLOTILLA_RESTORE_CONCURRENCY", "16")),
                    ) * (restored["objects"] / max(1, sample))
                    row["restore"], row["create_floor"] = restored, floor_c
                    print(_line(n, "restore", restored, floor_c), flush=True)
                results["sizes"][n] = row
                for name in (src, tgt):
                    if name in started:
                        runtime.delete(name)
                        started.remove(name)
            if args.velero:
                results["velero"] = _side_by_side(args.velero, env, log, cluster, runtime, started, work)
        finally:
            for name in started:
                runtime.delete(name)
    return results


def _side_by_side(
    n: int, env: dict[str, str], log: Path, cluster: Any, runtime: Any, started: list[str], work: Path
) -> dict[str, Any]:
    """Both tools on one cluster and one namespace of N ConfigMaps of ~1 KB."""
    from bench.load_objects import load
    from bench.velero_peer import run as velero_run

    kubeconfig = cluster("peer")
    load(kubeconfig, "peer", configmaps=n, secrets=0)
    _child(env, SETUP, {"peer": ["peer", kubeconfig]}, log)
    selection = {"include_namespaces": ["peer"]}
    ours = _child(
        env, MEASURE, {"action": "snapshot", "source": "peer", "name": "peer", "selection": selection}, log
    )
    mine = _child(
        env,
        MEASURE,
        {
            "action": "restore",
            "source": "peer",
            "target": "peer",
            "name": "peer",
            "options": {"namespace_map": {"peer": "peer-flotilla"}},
        },
        log,
    )
    theirs = velero_run(kubeconfig, "peer", target_namespace="peer-velero", work_dir=work / "velero")
    return {"flotilla": {"snapshot": ours, "restore": mine}, "velero": theirs, "objects": n}


def _line(n: int, what: str, got: dict[str, Any], floor: float) -> str:
    rate = got["objects"] / got["seconds"] if got["seconds"] else 0
    share = 100 * floor / got["seconds"] if got["seconds"] else 0
    return (
        f"N={n:>7,}  {what:8} {got['objects']:>8,} objects in {got['seconds']:7.1f} s = {rate:8,.0f}/s  "
        f"peak RSS {got['peak_rss_mib']:6.0f} MiB  API floor {floor:6.1f} s ({share:3.0f}% of the time)  "
        f"[{got['status']}]"
    )


def _print_peer(peer: dict[str, Any]) -> None:
    n = peer["objects"]
    ours_s, ours_r = peer["flotilla"]["snapshot"], peer["flotilla"]["restore"]
    v = peer["velero"]
    vb, vr = v["backup"], v["restore"]
    rows = [
        ("backup/snapshot objects/s", ours_s["objects"] / ours_s["seconds"], vb["items"] / vb["seconds"]),
        ("restore objects/s", ours_r["objects"] / ours_r["seconds"], vr["items"] / vr["seconds"]),
        ("peak RSS MiB (snapshot)", ours_s["peak_rss_mib"], vb["peak_rss_with_plugins_mib"]),
        ("peak RSS MiB (restore)", ours_r["peak_rss_mib"], vr["peak_rss_with_plugins_mib"]),
    ]
    print(f"\nSide by side on {n:,} ConfigMaps (same cluster, same namespace)")
    print(f"{'':28}{'Flotilla':>12}{'Velero':>12}{'ratio':>10}")
    for label, ours, theirs in rows:
        ratio = ours / theirs if "RSS" not in label else theirs / ours
        print(f"{label:28}{ours:>12,.1f}{theirs:>12,.1f}{ratio:>9.1f}x")
    print(
        f"Velero {v['version']}: backup {vb['seconds']:.1f} s ({vb['phase']}, {vb['items']:,} items), "
        f"restore {vr['seconds']:.1f} s ({vr['phase']}, {vr['items']:,} items); its server alone peaked at "
        f"{vb['server_peak_rss_mib']:.0f} / {vr['server_peak_rss_mib']:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,300000")
    parser.add_argument("--restore-sizes", default="10000,100000")
    parser.add_argument("--velero", type=int, default=20000)
    parser.add_argument("--no-velero", action="store_true")
    args = parser.parse_args()
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    args.restore_sizes = {int(x) for x in args.restore_sizes.split(",") if x}
    if args.no_velero:
        args.velero = 0
    results = run(args)
    if results["velero"]:
        _print_peer(results["velero"])
    out = ROOT / "var" / "bench-snapshots.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nall figures: {out}")


if __name__ == "__main__":
    main()
