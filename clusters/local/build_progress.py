"""What a person sees while the local Kubernetes binaries build: a plan, numbered steps, a heartbeat.

A cold build takes 12-27 minutes of `go` on two cores (1,644 s measured on a fresh machine), most
of it in single commands that print nothing for minutes. So the build says up front how long it
takes and where it caches, numbers each step ("[3/14] building kube-apiserver v1.36.1 …"), ends
each with its duration and the elapsed total, and while one command runs prints "still building
…" every HEARTBEAT seconds, so that a silent terminal always means a stuck machine, never a slow
one. Stdlib only, like clusters.local.binaries, and with the clock and the output injectable so
that tests drive it without running Go.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HEARTBEAT = 30.0


def format_elapsed(seconds: float) -> str:
    """40 -> "40 s", 580 -> "9 min 40 s", 3720 -> "1 h 2 min"."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@dataclass
class Beat:
    """The heartbeat of one running step: `still()` prints how long it has been going."""

    what: str
    started: float
    progress: BuildProgress

    @property
    def interval(self) -> float:
        return self.progress.heartbeat

    def still(self) -> None:
        running = self.progress.clock() - self.started
        self.progress.say(f"      still {self.what} ({running:.0f} s)")


@dataclass
class BuildProgress:
    """Numbered progress of a build of `total` steps, written as whole lines to `out`."""

    total: int
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    clock: Callable[[], float] = time.monotonic
    heartbeat: float = HEARTBEAT
    done: int = 0
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def announce(self, cache: Path, *, parts: Sequence[str], resuming: bool) -> None:
        """Before the first step: what is built, how long it takes, and where it is kept."""
        steps = f"{self.total} step{'s' if self.total != 1 else ''}"
        if resuming:
            self.say(f"Finishing the local Kubernetes binaries: {steps} left ({', '.join(parts)}).")
        else:
            self.say(f"Building the local Kubernetes binaries: {steps} ({', '.join(parts)}).")
            self.say(
                "The first run takes about a quarter of an hour (12-27 minutes on two cores); "
                "later runs reuse the cache."
            )
        self.say(f"Cache: {cache} (shared by every checkout; an interrupted build resumes).")

    @contextmanager
    def step(self, what: str) -> Iterator[Beat]:
        """One numbered step: its start line, then its duration and the elapsed total."""
        self.done += 1
        head = f"[{self.done}/{self.total}] {what} …"
        self.say(head)
        began = self.clock()
        yield Beat(what=what, started=began, progress=self)
        now = self.clock()
        self.say(f"{head} done in {now - began:.0f} s (elapsed {format_elapsed(now - self.started)})")

    def finish(self) -> None:
        self.say(f"Built {self.done} of {self.total} steps in {format_elapsed(self.clock() - self.started)}.")


def run_with_heartbeat(
    args: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    beat: Beat,
    popen: Callable[..., Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `args` to the end, calling `beat.still()` every heartbeat interval while it runs."""
    # A subprocess.Popen, or a test's fake with communicate(timeout=) and returncode.
    proc = (popen or subprocess.Popen)(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    while True:
        try:
            # Retrying communicate() after its timeout loses no output (documented by subprocess).
            out, err = proc.communicate(timeout=beat.interval)
            break
        except subprocess.TimeoutExpired:
            beat.still()
    return subprocess.CompletedProcess(args, proc.returncode or 0, out, err)
