"""What one step of a long job achieved: done, taken (call again at once), or waiting."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """What a step achieved: done, or not yet (with a message, progress and a wait)."""

    done: bool
    message: str = ""
    progress: int | None = None
    # Seconds until the job should be stepped again; 0 means at once. A positive wait releases
    # the worker: the operation is queued again and dispatched when it is due.
    retry_after: float = 0.0

    @classmethod
    def finished(cls, message: str = "") -> Outcome:
        return cls(done=True, message=message, progress=100)

    @classmethod
    def step(cls, message: str, progress: int | None = None) -> Outcome:
        """A step was taken; call again at once."""
        return cls(done=False, message=message, progress=progress)

    @classmethod
    def wait(cls, message: str, seconds: float = 2.0, progress: int | None = None) -> Outcome:
        """Nothing to do until something outside changes; call again after `seconds`."""
        return cls(done=False, message=message, progress=progress, retry_after=max(0.1, seconds))
