"""Velero, built here from Go modules and run out of the cluster, as the snapshot benchmark's peer.

    python bench/velero_peer.py build      # Velero v1.18.3 + velero-plugin-for-aws v1.14.3, cached
    python bench/velero_peer.py run --kubeconfig F --namespace NS --target NS2
    python bench/velero_peer.py selftest --objects 2000

The binaries are cached like the local Kubernetes binaries (clusters.local.binaries), under
`<cache>/velero/<version>/{bin/velero,plugins/velero-plugin-for-aws}`, with the same Go module and
build caches, so a second build returns at once. Velero's go.mod has replace directives, which
`go install pkg@version` refuses: a throw-away wrapper module in a temporary directory requires it
and repeats the replaces that matter (see /work/shared/VELERO.md for how they were found).

`run` measures one backup of a namespace and one namespace-mapped restore of it against moto's S3
server on loopback; kwok runs no pods, so only resource manifests are backed up (no volumes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import psutil  # noqa: E402
import yaml  # noqa: E402

from clusters import kube  # noqa: E402
from clusters.local import binaries  # noqa: E402
from clusters.local.build_progress import BuildProgress  # noqa: E402
from clusters.local.runtime import embed_kubeconfig_files  # noqa: E402

VELERO_VERSION = "v1.18.3"
PLUGIN_VERSION = "v1.14.3"
VELERO_MODULE = "github.com/vmware-tanzu/velero"
PLUGIN_MODULE = "github.com/vmware-tanzu/velero-plugin-for-aws"
# Velero's own replace of kopia, and cli-runtime one patch lower: the proxy refuses the
# v0.33.12 Velero pins (403), and v0.33.10 builds and behaves the same for the CLI.
WRAPPER_REPLACES = (
    ("github.com/kopia/kopia", "github.com/project-velero/kopia v0.0.0-20251230033609-d946b1e75197"),
    ("k8s.io/cli-runtime", "k8s.io/cli-runtime v0.33.10"),
)


def velero_dir(cache: Path | None = None) -> Path:
    """Where this Velero version's binaries and build record are cached."""
    return (cache or binaries.cache_dir()) / "velero" / VELERO_VERSION


def velero_bin(cache: Path | None = None) -> Path:
    """The velero binary (server and CLI in one)."""
    return velero_dir(cache) / "bin" / "velero"


def plugin_dir(cache: Path | None = None) -> Path:
    """The directory `velero server --plugin-dir` reads: plugin binaries only."""
    return velero_dir(cache) / "plugins"


def _wrapper_go_mod() -> str:
    replaces = "\n".join(f"replace {old} => {new}" for old, new in WRAPPER_REPLACES)
    return f"module flotilla.local/velerobuild\n\ngo 1.26.0\n\n{replaces}\n"


def _velero_steps(layout: binaries.Layout, go: str, target: Path) -> list[binaries.Step]:
    env = binaries._go_env(layout)
    ldflags = f"-s -w -X {VELERO_MODULE}/pkg/buildinfo.Version={VELERO_VERSION}"

    def action(run: binaries.Runner) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        unfinished = target.with_name(target.name + ".partial")
        unfinished.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="fl-velerobuild-") as tmp:
            work = Path(tmp)
            (work / "go.mod").write_text(_wrapper_go_mod())
            run([go, "get", f"{VELERO_MODULE}/cmd/velero@{VELERO_VERSION}"], work, env, "velero modules")
            build = [
                go,
                "build",
                "-trimpath",
                "-ldflags",
                ldflags,
                "-o",
                str(unfinished),
                f"{VELERO_MODULE}/cmd/velero",
            ]
            run(build, work, env, f"velero {VELERO_VERSION}")
        unfinished.chmod(0o755)
        unfinished.replace(target)

    return [binaries.Step(f"building velero {VELERO_VERSION} (about 8 minutes cold)", action)]


def _plugin_steps(layout: binaries.Layout, go: str, target: Path) -> list[binaries.Step]:
    # GOBIN must not be the plugin directory itself while building: velero would load a
    # half-written file if a server started meanwhile, so install to a side directory and rename.
    staging = target.parent.with_name("plugins.partial")
    env = binaries._go_env(layout) | {"GOBIN": str(staging)}
    package = f"{PLUGIN_MODULE}/velero-plugin-for-aws@{PLUGIN_VERSION}"

    def action(run: binaries.Runner) -> None:
        staging.mkdir(parents=True, exist_ok=True)
        run(
            [go, "install", "-trimpath", "-ldflags", "-s -w", package],
            layout.root,
            env,
            "velero-plugin-for-aws",
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        (staging / target.name).replace(target)
        shutil.rmtree(staging, ignore_errors=True)

    return [binaries.Step(f"building velero-plugin-for-aws {PLUGIN_VERSION} (about 4 minutes cold)", action)]


def missing(cache: Path | None = None) -> list[str]:
    """What of Velero still has to be built."""
    gaps = []
    if not velero_bin(cache).is_file():
        gaps.append(f"velero {VELERO_VERSION}")
    if not (plugin_dir(cache) / "velero-plugin-for-aws").is_file():
        gaps.append(f"velero-plugin-for-aws {PLUGIN_VERSION}")
    return gaps


def build(
    cache: Path | None = None, *, run: binaries.StepRunner = binaries.run_go, out: IO[str] | None = None
) -> dict[str, object]:
    """Build whatever of Velero is missing; returns (and stores beside the binaries) a build record."""
    layout = binaries.Layout(cache or binaries.cache_dir())
    started = time.monotonic()
    gaps = missing(layout.root)
    if not gaps:
        return {"built": [], "seconds": round(time.monotonic() - started, 3)}
    go = binaries._go()
    steps: list[binaries.Step] = []
    if not velero_bin(layout.root).is_file():
        steps += _velero_steps(layout, go, velero_bin(layout.root))
    plugin = plugin_dir(layout.root) / "velero-plugin-for-aws"
    if not plugin.is_file():
        steps += _plugin_steps(layout, go, plugin)
    progress = BuildProgress(total=len(steps), out=out or sys.stdout)
    progress.say(
        f"Building Velero for the snapshot benchmark: {', '.join(gaps)}; cache {velero_dir(layout.root)}."
    )
    for step in steps:
        with progress.step(step.what) as beat:
            step.action(binaries._under(run, beat))
    progress.finish()
    record: dict[str, object] = {
        "built": gaps,
        "seconds": round(time.monotonic() - started, 1),
        "peak_child_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "velero_bytes": velero_bin(layout.root).stat().st_size,
        "plugin_bytes": plugin.stat().st_size,
        "finished_at": datetime.now(UTC).isoformat(),
    }
    (velero_dir(layout.root) / "build-record.json").write_text(json.dumps(record, indent=2))
    return record


class PeerError(RuntimeError):
    """Velero could not be set up or run; the message says which step and why."""


VELERO_NAMESPACE = "velero"
BUCKET = "velero"
# Velero's controller library listens here whatever flags it is given (VELERO.md, step 5).
FIXED_METRICS_PORT = 8080
SAMPLE_INTERVAL = 0.2
CRD_GROUP = "velero.io"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def check_port_free(port: int = FIXED_METRICS_PORT) -> None:
    """PeerError unless `port` can be bound on every address (velero server binds *:8080)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError as exc:
            raise PeerError(
                f"port {port} is in use ({exc.strerror}): velero server always listens on *:{port} "
                "for its controllers' metrics and no flag moves it; stop what holds the port"
            ) from None


def _wait_until(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.25) -> Any:
    ends = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > ends:
            raise PeerError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _moto_command() -> str:
    beside = Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.is_file() else shutil.which("moto_server")
    if not found:
        raise PeerError("moto_server is not installed (moto's `server` extra)")
    return found


@contextlib.contextmanager
def moto_s3(work_dir: Path) -> Iterator[str]:
    """moto's S3 in server mode on a free loopback port, with the bucket made; yields its URL."""
    import boto3  # type: ignore[import-untyped]

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work_dir / "moto.log").open("wb")
    proc = subprocess.Popen(
        [_moto_command(), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:

        def answering() -> bool:
            if proc.poll() is not None:
                raise PeerError(f"moto_server exited with {proc.returncode}; see {work_dir / 'moto.log'}")
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        _wait_until(answering, timeout=30, what="moto's S3 server")
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        yield url
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class MemorySampler:
    """Peak RSS of a process, alone and with its descendants, sampled every SAMPLE_INTERVAL s.

    `mark(name)` starts a named window (backup, restore): each window keeps its own peaks too.
    """

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.peak_with_children = 0
        self.windows: dict[str, list[int]] = {}
        self._current: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="velero-rss", daemon=True)
        self.lock = threading.Lock()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mark(self, window: str | None) -> None:
        """Samples from now on also count towards `window` (None: towards no window)."""
        with self.lock:
            self._current = window
            if window is not None:
                self.windows.setdefault(window, [0, 0])

    def sample(self) -> None:
        """One sample (the thread calls it; a test may too)."""
        try:
            own = self.process.memory_info().rss
            children = self.process.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        total = own
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += child.memory_info().rss
        with self.lock:
            self.peak = max(self.peak, own)
            self.peak_with_children = max(self.peak_with_children, total)
            if self._current is not None:
                window = self.windows[self._current]
                window[0] = max(window[0], own)
                window[1] = max(window[1], total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_INTERVAL)


def _mib(value: int) -> float:
    return round(value / 2**20, 1)


def _velero(args: list[str], kubeconfig: Path, *, timeout: float, out: Path | None = None) -> str:
    """Run the velero CLI against the cluster; its output (or PeerError with its end)."""
    command = [str(velero_bin()), *args, "--kubeconfig", str(kubeconfig), "-n", VELERO_NAMESPACE]
    try:
        if out is None:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
            output, returncode = done.stdout + done.stderr, done.returncode
        else:
            with out.open("w") as sink:
                returncode = subprocess.run(
                    command, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout, check=False
                ).returncode
            output = out.read_text()[-4000:]
    except subprocess.TimeoutExpired:
        raise PeerError(f"velero {' '.join(args[:2])} did not finish within {timeout:.0f} s") from None
    if returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-20:])
        raise PeerError(f"velero {' '.join(args[:3])} failed ({returncode}):\n{tail}")
    return output


def crd_manifests(kubeconfig: Path) -> list[dict[str, Any]]:
    """Velero's CRDs, from `velero install --crds-only --dry-run -o yaml` (no kubectl)."""
    text = _velero(["install", "--crds-only", "--dry-run", "-o", "yaml"], kubeconfig, timeout=60)
    crds: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(text):
        if not isinstance(doc, dict):
            continue
        # The output is one v1 List; a plain stream of documents would do as well.
        for item in doc.get("items", [doc]) if doc.get("kind") == "List" else [doc]:
            if item.get("kind") == "CustomResourceDefinition":
                item.get("metadata", {}).pop("creationTimestamp", None)
                item.pop("status", None)
                crds.append(item)
    if not crds:
        raise PeerError("velero install --crds-only printed no CustomResourceDefinition")
    return crds


def _established(client: kube.Client, name: str) -> bool:
    crd = kube.get(client, "apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
    conditions = crd.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def install(client: kube.Client, kubeconfig: Path, s3_url: str) -> list[str]:
    """Velero's CRDs, its namespace, the location `default` and the 0-replica Deployment; CRD names."""
    crds = crd_manifests(kubeconfig)
    names = [crd["metadata"]["name"] for crd in crds]
    for crd in crds:
        kube.apply(client, crd, force=True)
    for name in names:
        _wait_until(partial(_established, client, name), timeout=60, what=f"CRD {name} established")
    kube.apply(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": VELERO_NAMESPACE}})
    location = {
        "apiVersion": "velero.io/v1",
        "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": VELERO_NAMESPACE},
        "spec": {
            "provider": "aws",
            "default": True,
            "objectStorage": {"bucket": BUCKET},
            "config": {"region": "us-east-1", "s3ForcePathStyle": "true", "s3Url": s3_url},
        },
    }
    kube.apply(client, location)
    # Velero's pod-volume restore action reads this Deployment's image; without it every
    # restore ends PartiallyFailed (VELERO.md, step 4). Zero replicas: kwok runs no pods anyway.
    labels = {"component": "velero"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "velero", "namespace": VELERO_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "velero", "image": f"velero/velero:{VELERO_VERSION}"}]},
            },
        },
    }
    kube.apply(client, deployment)
    return names


def _drop_finalizers(client: kube.Client, crd_name: str) -> None:
    """Clear the finalizers of every object of one of velero's kinds: with the server stopped,
    nothing would ever remove them, and the namespace and the CRD would stay Terminating."""
    try:
        crd = kube.get(client, "apiextensions.k8s.io/v1", "CustomResourceDefinition", crd_name)
    except kube.NotFound:
        return
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("served"))
    api_version, kind = f"{spec['group']}/{version}", spec["names"]["kind"]
    for obj in kube.list_items(client, (api_version, kind)):
        meta = obj["metadata"]
        if meta.get("finalizers"):
            with contextlib.suppress(kube.NotFound):
                kube.patch(
                    client,
                    api_version,
                    kind,
                    meta["name"],
                    {"metadata": {"finalizers": None}},
                    namespace=meta.get("namespace"),
                )


def uninstall(client: kube.Client, crd_names: list[str]) -> None:
    """Remove velero's namespace and its CRDs, waiting until both are gone."""
    for name in crd_names:
        _drop_finalizers(client, name)
    kube.delete(client, "v1", "Namespace", VELERO_NAMESPACE, missing_ok=True)
    for name in crd_names:
        kube.delete(client, "apiextensions.k8s.io/v1", "CustomResourceDefinition", name, missing_ok=True)

    def gone() -> bool:
        try:
            kube.get(client, "v1", "Namespace", VELERO_NAMESPACE)
        except kube.NotFound:
            pass
        else:
            return False
        for name in crd_names:
            try:
                kube.get(client, "apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
            except kube.NotFound:
                continue
            return False
        return True

    _wait_until(gone, timeout=120, what="velero's namespace and CRDs deleted", interval=0.5)


@contextlib.contextmanager
def velero_server(kubeconfig: Path, work_dir: Path, credentials: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`velero server` as a local process, its log in work_dir; stopped with its plugins on exit."""
    check_port_free()
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    command = [
        str(velero_bin()),
        "server",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        VELERO_NAMESPACE,
        "--plugin-dir",
        str(plugin_dir()),
        "--uploader-type",
        "kopia",
        "--default-backup-storage-location",
        "default",
        "--metrics-address",
        f"127.0.0.1:{_free_port()}",
        "--profiler-address",
        f"127.0.0.1:{_free_port()}",
    ]
    log = (work_dir / "velero-server.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        children = []
        with contextlib.suppress(psutil.NoSuchProcess):
            children = psutil.Process(proc.pid).children(recursive=True)
        _stop(proc)
        for child in children:  # go-plugin children normally exit with the server
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        log.close()


def _phase(client: kube.Client, kind: str, name: str) -> dict[str, Any]:
    obj = kube.get(client, "velero.io/v1", kind, name, VELERO_NAMESPACE)
    status: dict[str, Any] = obj.get("status", {})
    return status


def _location_available(client: kube.Client, server: subprocess.Popen[bytes], log: Path) -> bool:
    if server.poll() is not None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise PeerError(f"velero server exited with {server.returncode}:\n{tail}")
    status = _phase(client, "BackupStorageLocation", "default")
    return status.get("phase") == "Available"


def _summary(status: dict[str, Any], done_key: str, seconds: float, peaks: list[int]) -> dict[str, Any]:
    progress = status.get("progress", {})
    items = int(progress.get(done_key, 0))
    return {
        "seconds": round(seconds, 2),
        "items": items,
        "total_items": int(progress.get("totalItems", 0)),
        "objects_per_s": round(items / seconds, 1) if seconds else 0.0,
        "phase": status.get("phase", ""),
        "errors": int(status.get("errors", 0)),
        "warnings": int(status.get("warnings", 0)),
        "server_peak_rss_mib": _mib(peaks[0]),
        "peak_rss_with_plugins_mib": _mib(peaks[1]),
    }


def _read_kubeconfig(kubeconfig: str, work_dir: Path) -> Path:
    """A kubeconfig file for velero: `kubeconfig` itself if it names a file, else its text written out."""
    if "\n" not in kubeconfig and Path(kubeconfig).is_file():
        return Path(kubeconfig).resolve()
    path = work_dir / "kubeconfig.yaml"
    path.write_text(kubeconfig)
    path.chmod(0o600)
    return path


def run(
    kubeconfig: str, namespace: str, *, target_namespace: str, work_dir: Path, timeout: float = 3600
) -> dict[str, Any]:
    """Back up `namespace` with Velero and restore it into `target_namespace`; the measured figures.

    `kubeconfig` is the kubeconfig's text (or a path to it). Seconds are wall time of the CLI's
    `--wait` (what a person waits); items come from the Backup's and the Restore's status; RSS
    is the server's peak, alone and with its plugin processes. Everything started here is stopped
    and velero's namespace and CRDs are removed, whatever happens; the restored objects stay.
    """
    missing_parts = missing()
    if missing_parts:
        raise PeerError(
            f"Velero is not built ({', '.join(missing_parts)}): run `python bench/velero_peer.py build`"
        )
    check_port_free()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = _read_kubeconfig(kubeconfig, work_dir)
    # velero reads certificate files a kubeconfig names; the gateway takes them inline only.
    inline = embed_kubeconfig_files(config_path.read_text(), base=config_path.parent)
    client = kube.connect(inline, trusted=True)
    credentials = work_dir / "aws-credentials"
    credentials.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    stamp = datetime.now(UTC).strftime("%H%M%S")
    backup_name, restore_name = f"bench-{stamp}", f"bench-{stamp}-restore"
    crd_names: list[str] = []
    server_log = work_dir / "velero-server.log"
    figures: dict[str, Any] = {"tool": "velero", "version": VELERO_VERSION, "plugin_version": PLUGIN_VERSION}
    try:
        with moto_s3(work_dir) as s3_url:
            crd_names = install(client, config_path, s3_url)
            started = time.monotonic()
            with (
                velero_server(config_path, work_dir, credentials) as server,
                MemorySampler(server.pid) as memory,
            ):
                _wait_until(
                    lambda: _location_available(client, server, server_log),
                    timeout=120,
                    what="location Available",
                )
                figures["startup_seconds"] = round(time.monotonic() - started, 2)

                memory.mark("backup")
                started = time.monotonic()
                backup_args = ["backup", "create", backup_name, "--include-namespaces", namespace, "--wait"]
                _velero(backup_args, config_path, timeout=timeout, out=work_dir / "backup-cli.log")
                seconds = time.monotonic() - started
                memory.sample()
                memory.mark(None)
                status = _phase(client, "Backup", backup_name)
                figures["backup"] = _summary(status, "itemsBackedUp", seconds, memory.windows["backup"])

                memory.mark("restore")
                started = time.monotonic()
                restore_args = [
                    "restore",
                    "create",
                    restore_name,
                    "--from-backup",
                    backup_name,
                    "--namespace-mappings",
                    f"{namespace}:{target_namespace}",
                    "--wait",
                ]
                _velero(restore_args, config_path, timeout=timeout, out=work_dir / "restore-cli.log")
                seconds = time.monotonic() - started
                memory.sample()
                memory.mark(None)
                status = _phase(client, "Restore", restore_name)
                figures["restore"] = _summary(status, "itemsRestored", seconds, memory.windows["restore"])
                figures["server_peak_rss_mib"] = _mib(memory.peak)
                figures["peak_rss_with_plugins_mib"] = _mib(memory.peak_with_children)
    finally:
        try:
            if crd_names:
                uninstall(client, crd_names)
        finally:
            # The restore's per-item warnings make the server's log huge (VELERO.md Pitfalls).
            for name in (
                "velero-server.log",
                "moto.log",
                "backup-cli.log",
                "restore-cli.log",
                "aws-credentials",
            ):
                (work_dir / name).unlink(missing_ok=True)
            if config_path.parent == work_dir:
                config_path.unlink(missing_ok=True)
    return figures


def selftest(objects: int, *, keep_dir: Path | None = None) -> dict[str, Any]:
    """Start a scratch local cluster, load `objects` ConfigMaps, run the peer, delete the cluster.

    `keep_dir` replaces the temporary work directory (velero's logs are removed from it either way).
    """
    from bench.load_objects import load
    from clusters.local.runtime import LocalClusterSpec, LocalRuntime, NodePoolSpec

    version = binaries.available_k8s_versions()[0]
    with tempfile.TemporaryDirectory(prefix="fl-velero-") as tmp:
        runtime = LocalRuntime(root=Path(tmp) / "state")
        name = "velero-peer"
        try:
            kubeconfig = runtime.create(LocalClusterSpec(name, version, (NodePoolSpec("pool", 1),)))
            seconds = load(kubeconfig, "bench-src", configmaps=objects, secrets=0)
            figures = run(
                kubeconfig, "bench-src", target_namespace="bench-dst", work_dir=keep_dir or Path(tmp) / "work"
            )
            figures["objects"] = objects
            figures["load_seconds"] = round(seconds, 1)
            figures["kubernetes"] = version
            return figures
        finally:
            runtime.delete(name)


def main(argv: list[str] | None = None) -> int:
    """CLI: build, run, selftest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build Velero and its AWS plugin (cached)")
    peer = sub.add_parser(
        "run", help="back up a namespace with Velero, restore it elsewhere, print the figures"
    )
    peer.add_argument("--kubeconfig", required=True, type=Path)
    peer.add_argument("--namespace", required=True)
    peer.add_argument("--target", required=True, help="namespace the restore maps into")
    peer.add_argument("--work-dir", type=Path, help="scratch directory (default: a temporary one)")
    test = sub.add_parser("selftest", help="the same on a scratch local cluster loaded with ConfigMaps")
    test.add_argument("--objects", type=int, default=2000)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            with tempfile.TemporaryDirectory(prefix="fl-velero-") as tmp:
                work = args.work_dir or Path(tmp)
                figures = run(
                    str(args.kubeconfig), args.namespace, target_namespace=args.target, work_dir=work
                )
            print(json.dumps(figures, indent=2))
            return 0
        if args.command == "selftest":
            print(json.dumps(selftest(args.objects), indent=2))
            return 0
    except PeerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.command == "build":
        try:
            record = build()
        except binaries.BuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(record))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
