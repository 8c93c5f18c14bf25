"""The step protocol every kind of long job implements, and the registry of kinds.

An app registers its kinds from its AppConfig.ready():

    register_job("create", ClusterJob(), label="Create")

The engine knows nothing of clusters, apps or snapshots: it claims an operation, asks the kind's
job for one step at a time, and calls the job's hooks when the operation succeeds, fails or is
cancelled. Every hook runs inside the org's schema; `succeed`, `fail` and `cancelled` run inside
the transaction that moves the operation, so the subject and the operation change together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Q

from clusters.engine.outcome import Outcome

if TYPE_CHECKING:
    from clusters.models import Operation


@dataclass
class Run:
    """One pass of a worker over one operation: what a job's hooks are given."""

    operation: Operation
    schema_name: str
    worker: str = ""
    # The job's subject (a cluster, an app...), loaded once per pass by `Job.load`.
    subject: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class Job:
    """One kind (or a family of kinds) of long job. Subclasses override the hooks they need."""

    def load(self, run: Run) -> Any:
        """The subject the operation works on (re-read from the database on every pass)."""
        return None

    def permission(self, operation: Operation) -> str:
        """The action (orgs.permissions) an actor needs to cancel or retry this operation."""
        raise NotImplementedError

    def conflicts(self, operation: Operation) -> Q:
        """Operations that must not run at the same time as this one (default: same subject)."""
        return Q(subject_type=operation.subject_type, subject_id=operation.subject_id)

    def begin(self, run: Run) -> None:
        """Called when a worker claims the operation (each pass): move the subject to its working state."""

    def step(self, run: Run) -> Outcome:
        """Take the next idempotent step; raise a FlotillaError (with `retryable`) on failure."""
        raise NotImplementedError

    def succeed(self, run: Run, outcome: Outcome) -> None:
        """The job is done: settle the subject (inside the operation's final transaction)."""

    def fail(self, run: Run, message: str) -> None:
        """The job gave up: settle the subject with the reason."""

    def cancelled(self, run: Run) -> None:
        """The job was cancelled: leave the subject in an honest state."""

    def note(self, run: Run, message: str, *, level: str = "info") -> None:
        """Add a line to the subject's timeline (and tell open pages)."""

    def changed(self, run: Run) -> None:
        """The operation's step or progress changed: tell open pages."""


@dataclass(frozen=True)
class JobKind:
    """A registered kind of operation."""

    kind: str
    label: str
    job: Job


_kinds: dict[str, JobKind] = {}


def register_job(kind: str, job: Job, *, label: str) -> None:
    """Make `kind` runnable by the engine (called from an app's ready(); idempotent)."""
    existing = _kinds.get(kind)
    if existing is not None and type(existing.job) is not type(job):
        raise ValueError(f"operation kind {kind!r} is already registered by {type(existing.job).__name__}")
    _kinds[kind] = JobKind(kind=kind, label=label, job=job)


def kind_of(kind: str) -> JobKind:
    """The registered kind; KeyError names what is registered."""
    try:
        return _kinds[kind]
    except KeyError:
        raise KeyError(
            f"no job is registered for operation kind {kind!r} (known: {sorted(_kinds)})"
        ) from None


def job_for(kind: str) -> Job:
    """The job that runs operations of `kind`."""
    return kind_of(kind).job


def label_of(kind: str) -> str:
    """A kind's display label ("Create", "Scale a pool"...); the kind itself if unknown."""
    found = _kinds.get(kind)
    return found.label if found is not None else kind
