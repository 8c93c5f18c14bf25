"""Fill a cluster with many small ConfigMaps and Secrets, concurrently, for the snapshot benchmarks.

    python bench/load_objects.py --kubeconfig F --namespace NS --configmaps N --secrets M [--namespaces K]

Every object goes through the gateway (`clusters.kube`), and every object is different: random
payload of about `size` bytes, an index, and a few labels that selections can match (`app`,
`tier`, `flotilla.io/bench`). A create is a POST, which the gateway never repeats, so the 429s
a busy API server answers (and a dropped connection) are retried here; a retry that finds the name
taken counts as done (the earlier attempt went through), a first attempt that does is an error.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clusters import kube
from clusters.local.runtime import embed_kubeconfig_files

BENCH_LABEL = "flotilla.io/bench"
TIERS = ("web", "api", "db", "cache")
# A create retried this often has met something other than a busy server.
MAX_ATTEMPTS = 30


class LoadFailed(RuntimeError):
    """An object could not be created after retries; the message names it and why."""


def namespaces_for(namespace: str, count: int) -> list[str]:
    """The namespaces a load spreads over: `namespace` alone, or `namespace-0` … `namespace-<k-1>`."""
    if count <= 1:
        return [namespace]
    return [f"{namespace}-{i}" for i in range(count)]


def _payload(size: int) -> str:
    # Random bytes in base64, so that no two objects share content and compression gains
    # no more than it would on real data (base64 text: about a quarter).
    return base64.b64encode(os.urandom(max(1, size * 3 // 4))).decode()[:size]


def make_object(kind: str, index: int, namespace: str, size: int) -> dict[str, Any]:
    """The `index`-th ConfigMap or Secret of a load: ~`size` bytes of distinct data, labelled."""
    labels = {BENCH_LABEL: "1", "app": f"app-{index % 20}", "tier": TIERS[index % len(TIERS)]}
    metadata = {"name": f"{kind.lower()}-{index:06d}", "namespace": namespace, "labels": labels}
    if kind == "ConfigMap":
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": {"index": str(index), "payload": _payload(size)},
        }
    raw = os.urandom(max(1, size * 3 // 4))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": {
            "index": base64.b64encode(str(index).encode()).decode(),
            "token": base64.b64encode(raw).decode(),
        },
    }


def create_one(client: kube.Client, obj: dict[str, Any], *, sleep: Any = time.sleep) -> int:
    """Create `obj`, waiting out 429s and dropped connections; returns how many retries it took."""
    retries = 0
    while True:
        try:
            kube.create(client, obj)
            return retries
        except kube.AlreadyExists:
            if retries:  # an earlier attempt went through before its answer was lost
                return retries
            raise
        except kube.TooManyRequests as exc:
            pause = exc.retry_after or min(2.0, 0.05 * 2**retries)
        except kube.Unavailable:
            pause = min(2.0, 0.1 * 2**retries)
        retries += 1
        if retries >= MAX_ATTEMPTS:
            meta = obj["metadata"]
            raise LoadFailed(
                f"{obj['kind']} {meta['namespace']}/{meta['name']}: still refused after {retries} tries"
            )
        sleep(pause)


def ensure_namespace(client: kube.Client, name: str) -> None:
    """Create the namespace unless it is there (server-side apply: safe to repeat)."""
    kube.apply(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def _plan(configmaps: int, secrets: int, spaces: list[str]) -> Iterator[tuple[str, int, str]]:
    for kind, count in (("ConfigMap", configmaps), ("Secret", secrets)):
        for index in range(count):
            yield kind, index, spaces[index % len(spaces)]


def load(
    kubeconfig: str,
    namespace: str,
    *,
    configmaps: int,
    secrets: int,
    size: int = 1000,
    workers: int = 16,
    namespaces: int = 1,
    stats: dict[str, int] | None = None,
) -> float:
    """Create `configmaps` ConfigMaps and `secrets` Secrets of ~`size` bytes; returns the seconds taken.

    `kubeconfig` is the kubeconfig's text; `namespaces=k` spreads the objects round-robin over
    `namespace-0` … `namespace-<k-1>` (see `namespaces_for`), created if missing. `stats`, if given,
    receives the counts of objects made and of 429/connection retries.
    """
    client = kube.connect(kubeconfig, trusted=True)
    spaces = namespaces_for(namespace, namespaces)
    for space in spaces:
        ensure_namespace(client, space)
    plan = _plan(configmaps, secrets, spaces)
    lock = threading.Lock()
    totals = {"objects": 0, "retries": 0}
    failure: list[BaseException] = []

    def worker() -> None:
        made = retried = 0
        while not failure:
            with lock:  # one shared generator: no list of 300,000 tuples in memory
                job = next(plan, None)
            if job is None:
                break
            kind, index, space = job
            try:
                retried += create_one(client, make_object(kind, index, space, size))
            except Exception as exc:  # the first failure stops every worker
                failure.append(exc)
                break
            made += 1
        with lock:
            totals["objects"] += made
            totals["retries"] += retried

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load") as pool:
        for _ in range(workers):
            pool.submit(worker)
    seconds = time.monotonic() - started
    if stats is not None:
        stats.update(totals)
    if failure:
        raise failure[0]
    return seconds


def main(argv: list[str] | None = None) -> int:
    """CLI: load objects and print how many, how fast."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, type=Path, help="kubeconfig file")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--configmaps", type=int, default=0)
    parser.add_argument("--secrets", type=int, default=0)
    parser.add_argument("--size", type=int, default=1000, help="bytes of data per object")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--namespaces", type=int, default=1, help="spread over this many namespaces")
    args = parser.parse_args(argv)
    stats: dict[str, int] = {}
    # The gateway takes certificates inline only; kwokctl's own file names them by path.
    kubeconfig = embed_kubeconfig_files(args.kubeconfig.read_text(), base=args.kubeconfig.resolve().parent)
    seconds = load(
        kubeconfig,
        args.namespace,
        configmaps=args.configmaps,
        secrets=args.secrets,
        size=args.size,
        workers=args.workers,
        namespaces=args.namespaces,
        stats=stats,
    )
    rate = stats["objects"] / seconds if seconds else 0.0
    print(f"{stats['objects']} objects in {seconds:.1f} s ({rate:.0f} objects/s, {stats['retries']} retries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
