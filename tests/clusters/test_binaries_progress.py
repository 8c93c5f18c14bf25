"""What the binaries build says while it runs, driven by a fake builder and a fake clock (no Go)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clusters.local import binaries
from clusters.local.build_progress import Beat, BuildProgress, format_elapsed, run_with_heartbeat


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_builder(clock: FakeClock, seconds: dict[str, float]):
    """Writes what each go command would write, taking `seconds[label]` (default 10) of fake time."""
    calls: list[str] = []

    def run(args: list[str], cwd: Path, env: dict[str, str], label: str, beat: Beat) -> None:
        calls.append(label)
        took = seconds.get(label, 10.0)
        while took > beat.interval:  # what run_with_heartbeat does while a long command runs
            clock.now += beat.interval
            took -= beat.interval
            beat.still()
        clock.now += took
        if "-o" in args:
            Path(args[args.index("-o") + 1]).write_text("binary")
        if args[1] == "install":
            for name in ("kwok", "kwokctl"):
                (Path(env["GOBIN"]) / name).write_text("binary")

    run.calls = calls  # type: ignore[attr-defined]
    return run


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> binaries.Layout:
    monkeypatch.delenv("FLOTILLA_LOCAL_K8S_VERSIONS", raising=False)
    return binaries.Layout(tmp_path / "cache")


def test_format_elapsed() -> None:
    assert format_elapsed(0) == "0 s"
    assert format_elapsed(40.4) == "40 s"
    assert format_elapsed(580) == "9 min 40 s"
    assert format_elapsed(3720) == "1 h 2 min"


def test_a_cold_build_says_how_long_where_and_numbers_every_step(layout: binaries.Layout) -> None:
    clock, out = FakeClock(), io.StringIO()
    run = fake_builder(clock, {"kube-apiserver v1.36.1": 212.0})
    record = binaries.build_all(layout, run=run, go="go", out=out, clock=clock)
    lines = out.getvalue().splitlines()

    # Before any step: the plan, the expected duration and the cache.
    first_step = next(i for i, line in enumerate(lines) if line.startswith("[1/"))
    preface = "\n".join(lines[:first_step])
    assert "15 steps" in preface and "kwok v0.8.0" in preface and "Kubernetes v1.36.1 and v1.35.4" in preface
    assert "about a quarter of an hour" in preface
    assert str(layout.root) in preface

    done = [line for line in lines if " done in " in line]
    assert len(done) == 15 == len(run.calls)  # type: ignore[attr-defined]
    assert [int(re.match(r"\[(\d+)/15\]", line)[1]) for line in done] == list(range(1, 16))  # type: ignore[index]
    assert done[0] == "[1/15] building kwok and kwokctl v0.8.0 … done in 10 s (elapsed 10 s)"
    apiserver = next(line for line in done if "kube-apiserver v1.36.1" in line)
    # Steps before it: kwok, etcd (2), the Kubernetes modules: 4 x 10 s, then 212 s.
    assert apiserver == "[5/15] building kube-apiserver v1.36.1 … done in 212 s (elapsed 4 min 12 s)"
    # A heartbeat every 30 s of the long command, between its start and its end line.
    start = lines.index("[5/15] building kube-apiserver v1.36.1 …")
    end = lines.index(apiserver)
    assert lines[start + 1 : end] == [
        f"      still building kube-apiserver v1.36.1 ({n} s)" for n in range(30, 211, 30)
    ]
    assert "resolving Kubernetes v1.35.4 modules" in "\n".join(lines)
    assert lines[-1] == "Built 15 of 15 steps in 5 min 52 s."
    assert record["cold"] is True and binaries.missing(layout) == []

    # A second run builds nothing and says nothing.
    again = io.StringIO()
    assert binaries.build_all(layout, run=run, go="go", out=again, clock=clock)["built"] == []
    assert again.getvalue() == "" and len(run.calls) == 15  # type: ignore[attr-defined]


def test_a_resumed_build_counts_only_what_is_left(layout: binaries.Layout) -> None:
    clock = FakeClock()
    binaries.build_all(layout, run=fake_builder(clock, {}), go="go", out=io.StringIO(), clock=clock)
    (layout.k8s_bin("v1.35.4") / "kubectl").unlink()
    (layout.etcd_bin() / "etcd").unlink()
    out = io.StringIO()
    run = fake_builder(clock, {})
    binaries.build_all(layout, run=run, go="go", out=out, clock=clock)
    text = out.getvalue()
    assert "2 steps left" in text and "quarter of an hour" not in text
    assert run.calls == ["etcd v3.6.10", "kubectl v1.35.4"]  # type: ignore[attr-defined]
    assert "[2/2] building kubectl v1.35.4 … done in 10 s" in text


class FakeProcess:
    """A child that runs for `beats` heartbeat intervals of the fake clock, then ends."""

    def __init__(self, clock: FakeClock, beats: int, returncode: int = 0) -> None:
        self.clock, self.beats, self.returncode_at_end = clock, beats, returncode
        self.returncode: int | None = None

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        if self.beats:
            self.beats -= 1
            self.clock.now += timeout or 0
            raise subprocess.TimeoutExpired("go", timeout or 0)
        self.returncode = self.returncode_at_end
        return "compiled\n", "warning: something\n"


def test_a_running_command_heartbeats_until_it_ends() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = BuildProgress(total=1, out=out, clock=clock)
    with progress.step("building etcd v3.6.10") as beat:
        proc = run_with_heartbeat(
            ["go", "build"], cwd=Path("/"), env={}, beat=beat, popen=lambda *a, **k: FakeProcess(clock, 3)
        )
    assert proc.returncode == 0 and proc.stdout == "compiled\n"
    assert out.getvalue().splitlines() == [
        "[1/1] building etcd v3.6.10 …",
        "      still building etcd v3.6.10 (30 s)",
        "      still building etcd v3.6.10 (60 s)",
        "      still building etcd v3.6.10 (90 s)",
        "[1/1] building etcd v3.6.10 … done in 90 s (elapsed 1 min 30 s)",
    ]


def test_a_failed_command_names_itself_and_shows_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(
        "clusters.local.build_progress.subprocess.Popen", lambda *a, **k: FakeProcess(clock, 0, returncode=1)
    )
    progress = BuildProgress(total=1, out=io.StringIO(), clock=clock)
    failed = pytest.raises(binaries.BuildError, match=r"etcd v3\.6\.10 failed \(go build\):\ncompiled\nwarn")
    with failed, progress.step("building etcd") as beat:
        binaries.run_go(["go", "build"], Path("/"), {}, "etcd v3.6.10", beat)


def test_the_real_process_runner_returns_the_output() -> None:
    progress = BuildProgress(total=1, out=io.StringIO())
    with progress.step("printing") as beat:
        proc = run_with_heartbeat([sys.executable, "-c", "print('hi')"], cwd=Path("/"), env={}, beat=beat)
    assert proc.returncode == 0 and proc.stdout == "hi\n"


def test_extra_versions_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOTILLA_LOCAL_K8S_VERSIONS", "1.34.2, v1.36.1")
    assert binaries.k8s_versions() == ("v1.36.1", "v1.35.4", "v1.34.2")
    monkeypatch.setenv("FLOTILLA_LOCAL_K8S_VERSIONS", "1.34")
    with pytest.raises(ValueError, match=r"'1\.34' is not a Kubernetes version"):
        binaries.k8s_versions()
