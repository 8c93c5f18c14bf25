"""The operations engine: one crash-safe runner for every long job of every app.

It owns claim, heartbeat, backoff, attempts, step timeout, cancel, retry, hand-over, dispatch and
the sweeper; each kind of job plugs in the small step protocol of `clusters.engine.jobs.Job` and
registers itself with `register_job`. Workers never sleep through a wait: a waiting operation is
queued again with its due time and dispatched exactly once when due (clusters.engine.dispatch).

- `jobs`: the protocol and the registry of kinds;
- `machine`: the one guarded status move (transition table, `WHERE status = <from>`, event row);
- `runner`: claim, heartbeat, one pass of steps, release / succeed / fail / cancel / retry;
- `dispatch`: the public-schema index of due operations and the dispatch loop;
- `sweeper`: dead workers, lost tasks (the minutely tick).
"""

from clusters.engine.jobs import Job, Run, job_for, label_of, register_job
from clusters.engine.outcome import Outcome

__all__ = ["Job", "Outcome", "Run", "job_for", "label_of", "register_job"]
