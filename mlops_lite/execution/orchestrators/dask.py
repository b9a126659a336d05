"""The ``dask`` orchestrator: steps run as tasks on a Dask distributed cluster.

Connects to a running scheduler (``address = "tcp://host:8786"``) or starts a
``LocalCluster`` of worker processes for the run. Tasks carry the step as
cloudpickle bytes and its inputs as materialized bytes, and return bytes: Dask
workers need ``mlops_lite`` and the step's imports installed, never the
repository. ``distributed`` is imported only when this orchestrator is used
(``pip install 'mlops-lite[dask]'``).

Each worker should run one task at a time (``--nthreads 1``, as the local
cluster does): a step captures its output by replacing ``sys.stdout``, which
threads of one process share. Dask cannot stop a running task, so a step past
its timeout fails with ``StepTimeoutError`` while its thread runs on.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import time
from typing import Any

from mlops_lite.errors import ConfigError, ExecutionError, StepTimeoutError, WorkerDiedError
from mlops_lite.execution.orchestrators.base import (
    Completion,
    Job,
    Orchestrator,
    cpu_count,
    failed_result,
)
from mlops_lite.execution.task import WorkerSetup, decode_result, encode_task, run_with_setup

__all__ = ["DaskOrchestrator"]

_CONNECT_SECONDS = 30.0


class DaskOrchestrator(Orchestrator):
    """Runs steps as tasks on a Dask cluster: at a scheduler address, or local to the run."""

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        connect_timeout: float = _CONNECT_SECONDS,
    ) -> None:
        try:
            # Typed as Any: this module must type-check where Dask is not installed.
            dask: Any = importlib.import_module("dask")
            distributed: Any = importlib.import_module("distributed")
        except ImportError as error:
            raise ConfigError(
                "the 'dask' orchestrator needs Dask distributed: pip install 'mlops-lite[dask]' "
                f"({error})"
            ) from error
        self._distributed = distributed
        self.address = address
        self._cluster: Any = None
        if address:
            try:
                self._client = distributed.Client(
                    address, timeout=connect_timeout, set_as_default=False
                )
            except OSError as error:
                raise ConfigError(
                    "the 'dask' orchestrator could not reach the scheduler "
                    f"at {address!r}: {error}; "
                    "start one with `dask scheduler` or fix the stack's address"
                ) from error
        else:
            # A dead worker fails its step at once instead of killing three more.
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self._cluster = distributed.LocalCluster(
                    n_workers=workers or cpu_count(),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                    # No dashboard, and its HTTP endpoints on a free port, not :8787.
                    scheduler_kwargs={"dashboard_address": ":0"},
                )
            self._client = distributed.Client(self._cluster, set_as_default=False)
        try:
            self._client.wait_for_workers(1, timeout=connect_timeout)
        except Exception as error:
            self.close()
            raise ConfigError(
                f"no Dask worker joined the scheduler at {self._client.scheduler.address} within "
                f"{connect_timeout:g}s: start one with `dask worker <scheduler address>`"
            ) from error
        self._threads: int = max(1, sum(self._client.nthreads().values()))
        self._setup = pickle.dumps(WorkerSetup.from_driver(with_sys_path=False))
        self._running: dict[Any, tuple[Job, float, float | None]] = {}

    @property
    def capacity(self) -> int:
        """The cluster's worker threads."""
        return self._threads

    def describe(self) -> dict[str, Any]:
        """The scheduler and thread count, recorded with the run."""
        return {
            "address": self.address or "local-cluster",
            "scheduler": self._client.scheduler.address,
            "threads": self._threads,
        }

    def submit(self, job: Job) -> None:
        """Send the job to the cluster as a task."""
        data = encode_task(job.task)
        future = self._client.submit(
            run_with_setup,
            self._setup,
            data,
            pure=False,
            key=f"mlops-lite-{job.invocation}-{job.job_id}-{time.time_ns()}",
        )
        deadline = time.monotonic() + job.timeout if job.timeout is not None else None
        self._running[future] = (job, time.time(), deadline)

    def wait(self, timeout: float | None) -> list[Completion]:
        """Collect finished tasks; fail those past their timeout."""
        if not self._running:
            return []
        now = time.monotonic()
        limits = [d - now for _, _, d in self._running.values() if d is not None]
        if timeout is not None:
            limits.append(timeout)
        try:
            # Not the default client (set_as_default=False leaves the user's alone).
            with self._client.as_current():
                self._distributed.wait(
                    list(self._running),
                    timeout=max(0.01, min(limits)) if limits else None,
                    return_when="FIRST_COMPLETED",
                )
        except TimeoutError:
            pass
        done = []
        now = time.monotonic()
        for future, (job, started, deadline) in list(self._running.items()):
            if future.done():
                del self._running[future]
                done.append(Completion(job, self._result(future, job, started)))
            elif deadline is not None and now >= deadline:
                del self._running[future]
                future.cancel()
                done.append(
                    Completion(
                        job,
                        failed_result(
                            job,
                            StepTimeoutError(
                                f"step {job.invocation!r} ran longer than its timeout "
                                f"of {job.timeout:g}s; its Dask task was cancelled "
                                "(Dask cannot stop a running task: its worker thread "
                                "may finish it in the background)"
                            ),
                            started=started,
                        ),
                    )
                )
        return done

    def _result(self, future: Any, job: Job, started: float) -> Any:
        if future.status == "finished":
            try:
                result = decode_result(future.result())
            except Exception as error:
                return failed_result(
                    job,
                    ExecutionError(
                        f"the result of step {job.invocation!r} came back from Dask "
                        f"but could not be loaded here: {type(error).__name__}: {error}"
                    ),
                    started=started,
                )
            result.invocation = job.invocation
            return result
        problem = future.exception() if future.status == "error" else None
        if type(problem).__name__ == "KilledWorker" or future.status == "lost":
            return failed_result(
                job,
                WorkerDiedError(
                    f"the Dask worker running step {job.invocation!r} died "
                    f"before the step finished (a crash, os._exit, or killed for memory): {problem}"
                ),
                started=started,
            )
        return failed_result(
            job,
            ExecutionError(
                f"Dask could not run step {job.invocation!r}: {future.status}: {problem!r}"
            ),
            started=started,
        )

    def cancel_all(self) -> None:
        """Cancel every task not finished yet."""
        for future in self._running:
            future.cancel()
        self._running.clear()

    def close(self) -> None:
        """Cancel what is left, disconnect, and stop a local cluster."""
        for future in self._running:
            future.cancel()
        self._running.clear()
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
