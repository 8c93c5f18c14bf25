"""The local provider on this machine: build cost, time to Ready, memory, density, scheduling.

Run: .venv/bin/python bench/local_clusters.py [--max-side-by-side 6]
Targets (issue 3): 3-node cluster Ready < 20 s; < 700 MB RSS per idle cluster.
Leaves the machine clean: every cluster it starts is deleted, in a scratch state directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil
from kubernetes import client as k8s

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clusters import kube
from clusters.local import binaries
from clusters.local.errors import HostLimitReached
from clusters.local.runtime import LocalClusterSpec, LocalRuntime, NodePoolSpec


def rss_mib(runtime: LocalRuntime, name: str) -> float:
    """Resident memory of every process of the cluster."""
    total = 0
    for pid in runtime.pids(name):
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-side-by-side", type=int, default=6)
    args = parser.parse_args()

    record = binaries.Layout(binaries.cache_dir()).record()
    if record.is_file():
        data = json.loads(record.read_text())
        print(
            f"last build: {data.get('seconds', 0) / 60:.1f} min, "
            f"peak child RSS {data.get('peak_child_rss_mib')} MiB "
            f"(built: {', '.join(data.get('built', []))})"
        )
    started = time.monotonic()
    binaries.build_all()
    print(f"warm start (everything cached): {time.monotonic() - started:.3f} s")
    version = binaries.available_k8s_versions()[0]

    with tempfile.TemporaryDirectory(prefix="fl-bench-") as tmp:
        runtime = LocalRuntime(root=Path(tmp))
        names: list[str] = []
        try:
            started = time.monotonic()
            runtime.create(LocalClusterSpec("bench-0", version, (NodePoolSpec("pool", 3),)))
            names.append("bench-0")
            print(f"create 3-node cluster to Ready: {time.monotonic() - started:.1f} s (target < 20 s)")
            time.sleep(10)
            print(f"RSS of one idle cluster: {rss_mib(runtime, 'bench-0'):.0f} MiB (target < 700 MB)")

            core = k8s.CoreV1Api(kube.cached_client(runtime.kubeconfig("bench-0"), trusted=True))
            runtime.scale_pool("bench-0", NodePoolSpec("pool", 10))
            core.create_namespace({"metadata": {"name": "bench"}})
            apps = k8s.AppsV1Api(core.api_client)
            labels = {"app": "hundred"}
            apps.create_namespaced_deployment(
                "bench",
                {
                    "metadata": {"name": "hundred"},
                    "spec": {
                        "replicas": 100,
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                        },
                    },
                },
            )
            started = time.monotonic()
            while True:
                pods = core.list_namespaced_pod("bench", label_selector="app=hundred").items
                if sum(1 for p in pods if p.status.phase == "Running") == 100:
                    break
                if time.monotonic() - started > 300:
                    print("100 replicas: not all Running after 300 s")
                    break
                time.sleep(0.5)
            print(f"100-replica Deployment all Running on 10 nodes: {time.monotonic() - started:.1f} s")

            for n in range(1, args.max_side_by_side):
                name = f"bench-{n}"
                try:
                    runtime.create(LocalClusterSpec(name, version, (NodePoolSpec("pool", 1),)))
                except HostLimitReached as exc:
                    print(f"stopped at {len(names)} clusters: {exc}")
                    break
                names.append(name)
            total = sum(rss_mib(runtime, n) for n in names)
            free = psutil.virtual_memory().available / 2**30
            print(f"{len(names)} clusters side by side: {total:.0f} MiB RSS in all, {free:.1f} GiB available")
        finally:
            for name in names:
                runtime.delete(name)


if __name__ == "__main__":
    main()
