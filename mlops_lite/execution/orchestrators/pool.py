"""The ``pool`` orchestrator: steps run in worker processes started once per run.

The driver owns its workers (one process, one pair of pipes each) instead of
using ``ProcessPoolExecutor``, which marks the whole pool broken when one worker
dies: here a worker that dies (segfault, ``os._exit``, the OOM killer) fails
only the step it was running, with ``WorkerDiedError``, and a new worker takes
its place. A step past its timeout has its worker killed (``StepTimeoutError``).
Workers start lazily, when a step needs one, so a fully cached run starts none.

Steps are packed by their ``resources``: ``workers`` is the number of CPUs the
pool hands out and ``gpus`` the number of GPUs, so a step asking for
``cpu_count=2`` holds two of them while it runs, and steps start in the order
they were submitted once what they ask for is free. A step asking for more
than the pool has (or for more memory than the machine has) fails at once with
``UnsatisfiableResourcesError``. GPUs are counted, not assigned: steps that
share the machine's GPUs choose a device themselves.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any

from mlops_lite.errors import (
    ExecutionError,
    StepTimeoutError,
    UnsatisfiableResourcesError,
    WorkerDiedError,
)
from mlops_lite.execution.orchestrators.base import (
    Completion,
    Job,
    Orchestrator,
    cpu_count,
    failed_result,
    memory_size,
)
from mlops_lite.execution.orchestrators.worker import READY
from mlops_lite.execution.task import WorkerSetup, decode_result, encode_task

__all__ = ["PoolOrchestrator"]

# A worker whose pipe stays open after it exited (a grandchild inherited the
# pipe) is still noticed by polling the process at this interval.
_POLL_SECONDS = 0.5
_EXIT_GRACE_SECONDS = 2.0


class _Worker:
    def __init__(self, setup: bytes) -> None:
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        package_parent = os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlops_lite.execution.orchestrators.worker",
                    str(task_read),
                    str(result_write),
                ],
                pass_fds=(task_read, result_write),
                env=env,
            )
        finally:
            os.close(task_read)
            os.close(result_write)
        self.tasks = Connection(task_write, readable=False)
        self.results = Connection(result_read, writable=False)
        self.ready = False
        self.job: Job | None = None
        self.started = 0.0
        self.deadline: float | None = None
        self.tasks.send_bytes(setup)  # small: fits the pipe buffer while the worker starts

    def exit_description(self) -> str:
        code = self.process.poll()
        if code is None:
            return "stopped answering"
        if code < 0:
            try:
                return f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.close_pipes()

    def close_pipes(self) -> None:
        for connection in (self.tasks, self.results):
            if not connection.closed:
                connection.close()


class PoolOrchestrator(Orchestrator):
    """Up to ``workers`` worker processes (default: the number of CPUs), sharing ``gpus`` GPUs."""

    name = "pool"

    def __init__(self, workers: int | None = None, *, gpus: int = 0) -> None:
        self.workers = workers or cpu_count()
        self.gpus = gpus
        self.memory = memory_size()
        self._setup: bytes | None = None
        self._live: list[_Worker] = []
        self._queue: deque[Job] = deque()
        self._done: list[Completion] = []

    @property
    def capacity(self) -> int:
        """The number of worker processes."""
        return self.workers

    def describe(self) -> dict[str, Any]:
        """The worker count (and GPUs, when it has some), recorded with the run."""
        return {"workers": self.workers, **({"gpus": self.gpus} if self.gpus else {})}

    # -- submitting -------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue the job and hand it to an idle worker, starting one if allowed."""
        problem = self._unsatisfiable(job)
        if problem is not None:
            self._done.append(Completion(job, failed_result(job, problem)))
            return
        self._queue.append(job)
        self._dispatch()

    def _unsatisfiable(self, job: Job) -> UnsatisfiableResourcesError | None:
        request = job.task.step.options.resources
        if not request:
            return None
        short = []
        if request.cpu_slots > self.workers:
            short.append(f"the pool has {self.workers} CPUs (workers = {self.workers})")
        if (request.gpu_count or 0) > self.gpus:
            short.append(f"the pool has {self.gpus} GPUs (gpus = {self.gpus})")
        if request.memory and self.memory and request.memory > self.memory:
            short.append(f"this machine has {self.memory} bytes of memory")
        if not short:
            return None
        return UnsatisfiableResourcesError(
            f"step {job.invocation!r} asks for {request.describe()}, but {' and '.join(short)}; "
            "give the pool more (with_options(workers=..., gpus=...) or the stack's settings) "
            "or lower the step's settings['resources']"
        )

    def _fits(self, job: Job) -> bool:
        """Whether the CPUs and GPUs ``job`` asks for are free now."""
        request = job.task.step.options.resources
        requests = [w.job.task.step.options.resources for w in self._live if w.job is not None]
        cpus = sum(other.cpu_slots for other in requests)
        gpus = sum(other.gpu_count or 0 for other in requests)
        memory = sum(other.memory or 0 for other in requests)
        return (
            cpus + request.cpu_slots <= self.workers
            and gpus + (request.gpu_count or 0) <= self.gpus
            and (not self.memory or not memory or memory + (request.memory or 0) <= self.memory)
        )

    def _dispatch(self) -> None:
        for worker in self._live:
            # In submission order: a step waiting for CPUs is never overtaken (no starvation).
            if not self._queue or not self._fits(self._queue[0]):
                break
            if worker.ready and worker.job is None:
                self._send(worker, self._queue.popleft())
        starting = sum(1 for worker in self._live if not worker.ready)
        wanted = min(len(self._queue) - starting, self.workers - len(self._live))
        for _ in range(max(0, wanted)):
            if self._setup is None:
                # Read when the first worker starts: the registrations as they are now.
                self._setup = pickle.dumps(WorkerSetup.from_driver(with_sys_path=True))
            self._live.append(_Worker(self._setup))

    def _send(self, worker: _Worker, job: Job) -> None:
        worker.job = job
        worker.started = time.time()
        worker.deadline = time.monotonic() + job.timeout if job.timeout is not None else None
        try:
            data = encode_task(job.task)
        except Exception as error:
            worker.job = None
            self._done.append(
                Completion(
                    job,
                    failed_result(
                        job,
                        ExecutionError(
                            f"step {job.invocation!r} could not be sent to a worker process: "
                            f"{type(error).__name__}: {error}; "
                            "its function, inputs and parameters must be picklable "
                            "with cloudpickle (or run it with the local orchestrator)"
                        ),
                    ),
                )
            )
            return
        try:
            worker.tasks.send_bytes(data)
        except OSError:
            self._worker_died(worker)

    # -- collecting -------------------------------------------------------------

    def wait(self, timeout: float | None) -> list[Completion]:
        """Collect results; notice dead workers and jobs past their timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self._done:
            now = time.monotonic()
            limits = [_POLL_SECONDS]
            limits += [w.deadline - now for w in self._live if w.deadline is not None]
            if end is not None:
                limits.append(end - now)
            ready = wait([w.results for w in self._live], timeout=max(0.0, min(limits)))
            for worker in [w for w in self._live if w.results in ready]:
                self._receive(worker)
            self._check_processes()
            self._dispatch()
            if end is not None and time.monotonic() >= end:
                break
        done, self._done = self._done, []
        return done

    def _receive(self, worker: _Worker) -> None:
        try:
            data = worker.results.recv_bytes()
        except (EOFError, OSError):
            self._worker_died(worker)
            return
        if not worker.ready:
            worker.ready = data == READY
            return
        job = worker.job
        if job is None:
            return
        worker.job = None
        worker.deadline = None
        try:
            result = decode_result(data)
        except Exception as error:
            result = failed_result(
                job,
                ExecutionError(
                    f"the result of step {job.invocation!r} came back from its worker process but "
                    f"could not be loaded here: {type(error).__name__}: {error}"
                ),
                started=worker.started,
            )
        result.invocation = job.invocation
        self._done.append(Completion(job, result))

    def _check_processes(self) -> None:
        now = time.monotonic()
        for worker in list(self._live):
            if worker.deadline is not None and now >= worker.deadline and worker.job is not None:
                job = worker.job
                worker.kill()
                self._live.remove(worker)
                self._done.append(
                    Completion(
                        job,
                        failed_result(
                            job,
                            StepTimeoutError(
                                f"step {job.invocation!r} ran longer than its timeout "
                                f"of {job.timeout:g}s; its worker process was killed"
                            ),
                            started=worker.started,
                        ),
                    )
                )
            elif worker.process.poll() is not None and worker in self._live:
                # Exited with its pipe still open: nothing more will come.
                if not worker.results.poll():
                    self._worker_died(worker)

    def _worker_died(self, worker: _Worker) -> None:
        worker.process.wait()
        worker.close_pipes()
        if worker in self._live:
            self._live.remove(worker)
        how = worker.exit_description()
        job = worker.job
        if job is None and not worker.ready and self._queue:
            # It never started (a broken environment): fail a waiting step rather than
            # start workers forever; its stderr went to the console.
            job = self._queue.popleft()
            self._done.append(
                Completion(
                    job,
                    failed_result(
                        job,
                        WorkerDiedError(
                            f"a worker process for step {job.invocation!r} {how} "
                            "before it was ready; its error output above says why"
                        ),
                    ),
                )
            )
            return
        if job is None:
            return
        self._done.append(
            Completion(
                job,
                failed_result(
                    job,
                    WorkerDiedError(
                        f"the worker process running step {job.invocation!r} {how} "
                        "before the step finished (a crash, os._exit, or killed for memory); "
                        "the step's output until then went to the console"
                    ),
                    started=worker.started,
                ),
            )
        )

    # -- stopping ---------------------------------------------------------------

    def cancel_all(self) -> None:
        """Kill the workers of running jobs and drop queued ones."""
        self._queue.clear()
        for worker in list(self._live):
            if worker.job is not None:
                worker.kill()
                self._live.remove(worker)

    def close(self) -> None:
        """Let idle workers exit, then kill any that do not."""
        for worker in self._live:
            worker.tasks.close()  # end of input: an idle worker exits at once
        deadline = time.monotonic() + _EXIT_GRACE_SECONDS
        for worker in self._live:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            worker.kill()
        self._live = []
