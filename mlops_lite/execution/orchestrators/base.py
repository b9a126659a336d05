"""The orchestrator interface: the driver submits step tasks, and collects their results.

An orchestrator only runs tasks. The driver decides what is ready, looks up the
cache, retries, and records; it never hands over more tasks than ``capacity``,
so a task's timeout starts when it really starts. A task that could not finish
(its worker died, it timed out) completes with a failed ``StepResult`` whose
``exception`` is a ``WorkerDiedError`` or ``StepTimeoutError`` naming the step.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from mlops_lite.errors import ConfigError
from mlops_lite.execution.task import StepResult, StepTask

if TYPE_CHECKING:
    from mlops_lite.execution.shipping import PinnedCode

__all__ = [
    "Completion",
    "Job",
    "Orchestrator",
    "cpu_count",
    "failed_result",
    "memory_size",
    "positive_int",
]


@dataclass
class Job:
    """One attempt at one step invocation."""

    job_id: int
    task: StepTask
    timeout: float | None
    attempt: int = 1

    @property
    def invocation(self) -> str:
        """The invocation this job runs."""
        return self.task.invocation


@dataclass
class Completion:
    """A job that finished, with its result."""

    job: Job
    result: StepResult


def failed_result(
    job: Job, error: BaseException, *, logs: str = "", started: float | None = None
) -> StepResult:
    """The result of a job that produced none of its own (dead worker, timeout)."""
    now = time.time()
    return StepResult(
        job.invocation,
        ok=False,
        logs=logs,
        error=f"{type(error).__module__}.{type(error).__qualname__}: {error}\n",
        exception=error,
        start_time=started if started is not None else now,
        end_time=now,
    )


class Orchestrator(abc.ABC):
    """Runs step tasks somewhere: in this process, in worker processes, on a cluster."""

    name: ClassVar[str]

    @property
    @abc.abstractmethod
    def capacity(self) -> int:
        """How many tasks may run at once."""

    @abc.abstractmethod
    def submit(self, job: Job) -> None:
        """Start running ``job``; its result comes back from ``wait``."""

    @abc.abstractmethod
    def wait(self, timeout: float | None) -> list[Completion]:
        """Block until at least one job completes (or ``timeout`` seconds pass)."""

    def use_code(self, code: PinnedCode) -> None:  # noqa: B027 - local workers share this checkout
        """The code the run is pinned to, for workers that must import it from elsewhere."""

    def cancel_all(self) -> None:  # noqa: B027 - in-process jobs cannot be stopped
        """Stop every running job (best effort); none of them will complete."""

    def close(self) -> None:  # noqa: B027 - most orchestrators hold nothing to release
        """Release workers; called once, when the run ends."""

    def describe(self) -> dict[str, Any]:
        """Settings recorded with the run."""
        return {}

    def __enter__(self) -> Orchestrator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def positive_int(settings: Mapping[str, Any], key: str, default: int, orchestrator: str) -> int:
    """``settings[key]`` as a positive int (digits in a string accepted), else ``default``."""
    value = settings.get(key, default)
    if value is None:
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(
            f"orchestrator {orchestrator!r}: {key} must be a positive integer, got {value!r}"
        )
    return value


def cpu_count() -> int:
    """The CPUs this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def memory_size() -> int:
    """The machine's physical memory in bytes (0 where the system does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0
