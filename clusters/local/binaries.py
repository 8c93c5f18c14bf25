"""Build and cache the binaries local clusters run on: kwok, Kubernetes, etcd.

Nothing can be downloaded from release pages here, so everything is built with Go through the
module proxy and cached outside the checkout (FLOTILLA_CACHE_DIR, default ~/.cache/flotilla),
keyed by version, so every checkout and CI's fresh clone reuse it:

    <cache>/kwok/v0.8.0/bin/{kwok,kwokctl}
    <cache>/k8s/v1.36.1/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
    <cache>/etcd/v3.6.10/bin/etcd

`k8s.io/kubernetes` replaces its staging modules with local paths, so it cannot be
`go install`ed; a generated wrapper module requires it and points every staging module at its
published v0.<minor>.<patch>. etcd's server module has the same problem and gets its own
wrapper. Each binary is written under a temporary name and renamed, so an interrupted build
resumes where it stopped; a finished build is never redone.

Stdlib only: `python -m clusters.local.binaries [build|status|path]`. A build first says what it
builds, how long a first run takes and where it caches, then numbers its steps and heartbeats
while each go command runs (clusters.local.build_progress).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from clusters.local.build_progress import Beat, BuildProgress, run_with_heartbeat
from clusters.versions import InvalidVersion, KubeVersion, newest_first

KWOK_VERSION = "v0.8.0"
# Two versions, so that a local cluster can be upgraded (and the upgrade tested).
DEFAULT_K8S_VERSIONS = ("v1.36.1", "v1.35.4")
ETCD_VERSION = "v3.6.10"
METRICS_SERVER_VERSION = "v0.8.0"
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

# Every module k8s.io/kubernetes keeps under staging/ (checked against its go.mod for 1.36).
STAGING_MODULES = (
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "cri-streaming",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
    "streaming",
)


class BuildError(RuntimeError):
    """A build step failed; the message names the command and the end of its output."""


def cache_dir() -> Path:
    """Where built binaries, Go modules and the Go build cache live."""
    explicit = os.environ.get("FLOTILLA_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flotilla"


def k8s_versions() -> tuple[str, ...]:
    """The Kubernetes versions to build: the default plus FLOTILLA_LOCAL_K8S_VERSIONS (comma-separated)."""
    extra = [v.strip() for v in os.environ.get("FLOTILLA_LOCAL_K8S_VERSIONS", "").split(",") if v.strip()]
    versions = list(DEFAULT_K8S_VERSIONS)
    for version in extra:
        tag = KubeVersion.parse(version).tag
        if tag not in versions:
            versions.append(tag)
    return tuple(versions)


@dataclass(frozen=True)
class Layout:
    """Paths of one cache."""

    root: Path

    def kwok_bin(self) -> Path:
        return self.root / "kwok" / KWOK_VERSION / "bin"

    def k8s_bin(self, version: str) -> Path:
        return self.root / "k8s" / version / "bin"

    def etcd_bin(self) -> Path:
        return self.root / "etcd" / ETCD_VERSION / "bin"

    def metrics_server_bin(self) -> Path:
        return self.root / "metrics-server" / METRICS_SERVER_VERSION / "bin"

    def work(self, name: str) -> Path:
        return self.root / "build" / name

    def record(self) -> Path:
        return self.root / "build-record.json"


def available_k8s_versions(layout: Layout | None = None) -> list[str]:
    """Kubernetes versions whose four binaries are all built, newest first (e.g. ['1.36.1'])."""
    layout = layout or Layout(cache_dir())
    root = layout.root / "k8s"
    found = []
    if root.is_dir():
        for entry in root.iterdir():
            if all((entry / "bin" / cmd).is_file() for cmd in KUBE_COMMANDS) and _is_version(entry.name):
                found.append(entry.name)
    return newest_first(found)


def _is_version(name: str) -> bool:
    try:
        KubeVersion.parse(name)
    except InvalidVersion:
        return False
    return True


def _go_env(layout: Layout) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOPATH=str(layout.root / "go"),
        GOMODCACHE=str(layout.root / "go" / "pkg" / "mod"),
        GOCACHE=str(layout.root / "go-build"),
        GOFLAGS="-mod=mod -buildvcs=false",
        # Two cores: parallel compiles beyond two only add memory pressure.
        GOMAXPROCS=env.get("GOMAXPROCS", "2"),
    )
    return env


def _go() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise BuildError("Go is not installed: the local provider's binaries are built with Go")
    return go


# Runs one go command of a step: (args, cwd, env, label). The default heartbeats while it runs.
Runner = Callable[[list[str], Path, dict[str, str], str], None]
# Runs one go command under a step's heartbeat; build_all's `run` (tests pass a fake builder).
StepRunner = Callable[[list[str], Path, dict[str, str], str, Beat], None]


def run_go(args: list[str], cwd: Path, env: dict[str, str], label: str, beat: Beat) -> None:
    """One go command, to the end; BuildError with the end of its output when it fails."""
    proc = run_with_heartbeat(args, cwd=cwd, env=env, beat=beat)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BuildError(f"{label} failed ({' '.join(args)}):\n{tail}")


@dataclass(frozen=True)
class Step:
    """One go command of the build, with what it says while it runs."""

    what: str
    action: Callable[[Runner], None]


def _atomic_build(target: Path, build: list[str], *, cwd: Path, env: dict[str, str], label: str) -> Step:
    """Build to a temporary name beside the target, then rename it into place."""

    def action(run: Runner) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        run([*build[:2], "-o", str(partial), *build[2:]], cwd, env, label)
        partial.chmod(0o755)
        partial.replace(target)

    return Step(f"building {label}", action)


def plan_kwok(layout: Layout, go: str) -> list[Step]:
    """kwok and kwokctl, with `go install` of the released module."""
    bin_dir = layout.kwok_bin()
    if (bin_dir / "kwok").is_file() and (bin_dir / "kwokctl").is_file():
        return []
    env = _go_env(layout) | {"GOBIN": str(bin_dir)}
    args = [
        go,
        "install",
        f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}",
        f"sigs.k8s.io/kwok/cmd/kwokctl@{KWOK_VERSION}",
    ]

    def action(run: Runner) -> None:
        bin_dir.mkdir(parents=True, exist_ok=True)
        run(args, layout.root, env, "kwok")

    return [Step(f"building kwok and kwokctl {KWOK_VERSION}", action)]


def _k8s_wrapper(layout: Layout, version: KubeVersion, go: str) -> tuple[Path, list[Step]]:
    staging = f"v0.{version.minor}.{version.patch}"
    work = layout.work(f"k8s-{version.tag}")
    marker = work / ".tidy-done"
    if marker.is_file():
        return work, []
    replaces = "\n".join(f"\tk8s.io/{m} => k8s.io/{m} {staging}" for m in STAGING_MODULES)
    tools = "\n".join(f"\tk8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS)

    def action(run: Runner) -> None:
        work.mkdir(parents=True, exist_ok=True)
        (work / "go.mod").write_text(
            "module flotilla.local/kubebuild\n\ngo 1.26\n\n"
            f"require k8s.io/kubernetes {version.tag}\n\n"
            f"replace (\n{replaces}\n)\n\n"
            f"tool (\n{tools}\n)\n"
        )
        run([go, "mod", "tidy"], work, _go_env(layout), f"go mod tidy for Kubernetes {version.tag}")
        marker.write_text(datetime.now(UTC).isoformat())

    return work, [Step(f"resolving Kubernetes {version.tag} modules (about 1 GB the first time)", action)]


def plan_kubernetes(layout: Layout, version: str, go: str) -> list[Step]:
    """kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of one version."""
    release = KubeVersion.from_any(version)
    bin_dir = layout.k8s_bin(release.tag)
    if all((bin_dir / c).is_file() for c in KUBE_COMMANDS):
        return []
    work, steps = _k8s_wrapper(layout, release, go)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={release.tag}",
            f"-X {pkg}.gitMajor={release.major}",
            f"-X {pkg}.gitMinor={release.minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={stamp}",
        ]
    ldflags = "-s -w " + " ".join(flags)
    env = _go_env(layout)
    for command in KUBE_COMMANDS:
        if (bin_dir / command).is_file():
            continue
        package = f"k8s.io/kubernetes/cmd/{command}"
        steps.append(
            _atomic_build(
                bin_dir / command,
                [go, "build", "-trimpath", "-tags", "selinux,notest", "-ldflags", ldflags, package],
                cwd=work,
                env=env,
                label=f"{command} {release.tag}",
            )
        )
    return steps


def _plan_from_wrapper(
    layout: Layout, go: str, *, name: str, module: str, version: str, package: str, target: Path
) -> list[Step]:
    """Build `package` of `module@version` through a throw-away wrapper module.

    `go install pkg@version` refuses modules whose go.mod has replace directives (etcd's
    server module has them); as a dependency of a wrapper, those directives do not apply.
    """
    if target.is_file():
        return []
    work = layout.work(f"{name}-{version}")
    env = _go_env(layout)
    steps = []
    if not (work / ".tidy-done").is_file():

        def resolve(run: Runner) -> None:
            work.mkdir(parents=True, exist_ok=True)
            (work / "go.mod").write_text(f"module flotilla.local/{name}build\n\ngo 1.26\n")
            run([go, "get", "-tool", f"{module}@{version}"], work, env, f"{name} modules")
            (work / ".tidy-done").write_text(datetime.now(UTC).isoformat())

        steps.append(Step(f"resolving {name} {version} modules", resolve))
    build = [go, "build", "-trimpath", "-ldflags", "-s -w", package]
    steps.append(_atomic_build(target, build, cwd=work, env=env, label=f"{name} {version}"))
    return steps


def plan_etcd(layout: Layout, go: str) -> list[Step]:
    """etcd's server."""
    return _plan_from_wrapper(
        layout,
        go,
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version=ETCD_VERSION,
        package="go.etcd.io/etcd/server/v3",
        target=layout.etcd_bin() / "etcd",
    )


def plan_metrics_server(layout: Layout, go: str) -> list[Step]:
    """metrics-server, which serves the metrics API from kwok's simulated kubelet metrics."""
    return _plan_from_wrapper(
        layout,
        go,
        name="metrics-server",
        module="sigs.k8s.io/metrics-server",
        version=METRICS_SERVER_VERSION,
        package="sigs.k8s.io/metrics-server/cmd/metrics-server",
        target=layout.metrics_server_bin() / "metrics-server",
    )


def plan(layout: Layout, go: str) -> list[Step]:
    """Every go command still to run, in order (a finished binary or module step is left out)."""
    steps = plan_kwok(layout, go) + plan_etcd(layout, go)
    for version in k8s_versions():
        steps += plan_kubernetes(layout, version, go)
    return steps + plan_metrics_server(layout, go)


def missing(layout: Layout | None = None) -> list[str]:
    """What still has to be built."""
    layout = layout or Layout(cache_dir())
    gaps = [f"kwok/{n}" for n in ("kwok", "kwokctl") if not (layout.kwok_bin() / n).is_file()]
    for version in k8s_versions():
        gaps += [f"k8s {version}/{c}" for c in KUBE_COMMANDS if not (layout.k8s_bin(version) / c).is_file()]
    if not (layout.etcd_bin() / "etcd").is_file():
        gaps.append("etcd")
    if not (layout.metrics_server_bin() / "metrics-server").is_file():
        gaps.append("metrics-server")
    return gaps


def _parts() -> list[str]:
    k8s = " and ".join(k8s_versions())
    return [
        f"kwok {KWOK_VERSION}",
        f"etcd {ETCD_VERSION}",
        f"Kubernetes {k8s}",
        f"metrics-server {METRICS_SERVER_VERSION}",
    ]


def _under(run: StepRunner, beat: Beat) -> Runner:
    """`run` bound to one step's heartbeat."""

    def runner(args: list[str], cwd: Path, env: dict[str, str], label: str) -> None:
        run(args, cwd, env, label, beat)

    return runner


def build_all(
    layout: Layout | None = None,
    *,
    run: StepRunner = run_go,
    go: str | None = None,
    out: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, object]:
    """Build whatever is missing, saying how far it is; returns (and stores) the time and peak memory.

    `run`, `go`, `out` and `clock` are for tests: a fake builder, no Go, captured output, a fake clock.
    """
    layout = layout or Layout(cache_dir())
    layout.root.mkdir(parents=True, exist_ok=True)
    gaps = missing(layout)
    started = clock()
    if not gaps:
        return {"built": [], "seconds": clock() - started}
    cold = len(gaps) == len(missing(Layout(layout.root / "nonexistent")))
    steps = plan(layout, go or _go())
    progress = BuildProgress(total=len(steps), out=out or sys.stdout, clock=clock)
    progress.announce(layout.root, parts=_parts(), resuming=not cold)
    for step in steps:
        with progress.step(step.what) as beat:
            step.action(_under(run, beat))
    progress.finish()
    seconds = clock() - started
    # Children's peak RSS (the largest go compile or link), in MiB.
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    record = {
        "built": gaps,
        "seconds": round(seconds, 1),
        "peak_child_rss_mib": round(peak_mib),
        "finished_at": datetime.now(UTC).isoformat(),
        "cold": cold,
    }
    layout.record().write_text(json.dumps(record, indent=2))
    return record


def metrics_server_manifests(layout: Layout | None = None) -> Path:
    """metrics-server's own kustomize base, from the module the build downloaded.

    kwokctl installs the metrics API's objects (APIService, Service, RBAC) from a manifest it
    would otherwise download from a release page; a local path is built with `kubectl kustomize`.
    """
    layout = layout or Layout(cache_dir())
    module = layout.root / "go" / "pkg" / "mod" / "sigs.k8s.io" / f"metrics-server@{METRICS_SERVER_VERSION}"
    return module / "manifests" / "base"


def paths(layout: Layout | None = None, version: str | None = None) -> dict[str, Path]:
    """Absolute paths of every binary for one Kubernetes version (default: the newest built)."""
    layout = layout or Layout(cache_dir())
    chosen = version or (available_k8s_versions(layout) or [DEFAULT_K8S_VERSIONS[0]])[0]
    k8s = layout.k8s_bin(KubeVersion.from_any(chosen).tag)
    result = {c: k8s / c for c in KUBE_COMMANDS}
    result["kwok"] = layout.kwok_bin() / "kwok"
    result["kwokctl"] = layout.kwok_bin() / "kwokctl"
    result["etcd"] = layout.etcd_bin() / "etcd"
    result["metrics-server"] = layout.metrics_server_bin() / "metrics-server"
    return result


def main(argv: list[str]) -> int:
    """CLI: build (default), status, path."""
    command = argv[0] if argv else "build"
    layout = Layout(cache_dir())
    if command == "status":
        gaps = missing(layout)
        print(f"cache: {layout.root}")
        print("missing: " + (", ".join(gaps) if gaps else "nothing"))
        print("kubernetes versions built: " + (", ".join(available_k8s_versions(layout)) or "none"))
        if layout.record().is_file():
            print("last build: " + layout.record().read_text().strip())
        return 0 if not gaps else 1
    if command == "path":
        for name, path in paths(layout).items():
            print(f"{name}\t{path}")
        return 0
    if command == "build":
        try:
            started = time.monotonic()
            record = build_all(layout)
        except (BuildError, InvalidVersion) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        built = record["built"]
        if isinstance(built, list) and built:
            print(f"Built {', '.join(built)} in {record['seconds']} s (cache {layout.root}).")
        else:
            elapsed = time.monotonic() - started
            print(f"Local Kubernetes binaries are ready ({elapsed:.2f} s, cache {layout.root}).")
        return 0
    print(f"usage: python -m clusters.local.binaries [build|status|path] (got {command!r})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
