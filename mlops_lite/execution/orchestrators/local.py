"""The default orchestrator: every step in this process, one after the other."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlops_lite.errors import StepTimeoutError
from mlops_lite.execution.orchestrators.base import Completion, Job, Orchestrator
from mlops_lite.execution.task import execute_step

__all__ = ["LocalOrchestrator"]


class LocalOrchestrator(Orchestrator):
    """Runs a step when it is submitted; ``wait`` hands back what ran."""

    name = "local"

    def __init__(self) -> None:
        self._done: list[Completion] = []

    @property
    def capacity(self) -> int:
        """One step at a time."""
        return 1

    def submit(self, job: Job) -> None:
        """Run the job now, in this process."""
        with _alarm(job.invocation, job.timeout):
            result = execute_step(job.task)
        self._done.append(Completion(job, result))

    def wait(self, timeout: float | None) -> list[Completion]:
        """The jobs that ran since the last call."""
        done, self._done = self._done, []
        return done


@contextmanager
def _alarm(invocation: str, timeout: float | None) -> Iterator[None]:
    """In-process timeouts: SIGALRM raises ``StepTimeoutError`` inside the step.

    There is no worker to kill here, so this is best effort: it interrupts Python
    code and sleeps, but not a long call into C, and a step that swallows every
    exception swallows it too. Only the main thread can receive signals.
    """
    usable = (
        timeout is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    assert timeout is not None

    def expire(signum: int, frame: Any) -> None:
        raise StepTimeoutError(
            f"step {invocation!r} ran longer than its timeout of {timeout:g}s and was stopped"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
