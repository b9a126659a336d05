"""The ``dask`` orchestrator: steps run as tasks on a Dask distributed cluster.

Connects to a running scheduler (``address = "tcp://host:8786"``) or starts a
``LocalCluster`` of worker processes for the run. Tasks carry the step as
cloudpickle bytes and its inputs as materialized bytes, and return bytes.
Workers need ``mlops_lite`` and the packages the steps import installed, never
the project: the run's pinned code (its commit, or the snapshot of a dirty
tree) travels with the run as a worker plugin (``dask_worker``), so every task
imports the code the run is pinned to. A worker whose Python or package
versions differ from the driver's is reported (a warning; an
``EnvironmentMismatchError`` with ``strict_env``). A step's ``resources``
become Dask resources (``GPU``, and ``CPU``/``MEMORY`` where workers declare
them) or a restriction to workers with enough threads and memory; a request no
worker can meet fails the step at once. ``distributed`` is imported only when
this orchestrator is used (``pip install 'mlops-lite[dask]'``).

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
import uuid
import warnings
from typing import Any

from mlops_lite.core.resources import ResourceRequest
from mlops_lite.errors import (
    ConfigError,
    EnvironmentMismatchError,
    ExecutionError,
    MlopsLiteError,
    StepTimeoutError,
    UnsatisfiableResourcesError,
    WorkerDiedError,
)
from mlops_lite.execution.environment import capture_environment, environment_differences
from mlops_lite.execution.orchestrators.base import (
    Completion,
    Job,
    Orchestrator,
    cpu_count,
    failed_result,
    memory_size,
)
from mlops_lite.execution.shipping import PinnedCode, pack_tree
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
        strict_env: bool = False,
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
        # Before connecting: close() after a failed start reads them.
        self._running: dict[Any, tuple[Job, float, float | None]] = {}
        self._refused: list[Completion] = []  # jobs failed before they reached the cluster
        self._plugin: str | None = None  # the registered PinnedCodePlugin of this run
        self._code: PinnedCode | None = None
        self.strict_env = strict_env
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
                    # The machine's CPUs and memory, so a step's resources fit as they would
                    # in one process here (each worker runs one task at a time).
                    resources={"CPU": cpu_count(), "MEMORY": memory_size()},
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
        try:
            self._check_environments()
        except BaseException:
            self.close()
            raise

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

    def use_code(self, code: PinnedCode) -> None:
        """Ship ``code`` to the workers, when the first task needs it (a cached run ships none)."""
        self._code = code

    def submit(self, job: Job) -> None:
        """Send the job to the cluster as a task, placed by the step's resources."""
        try:
            placement = self._placement(job.invocation, job.task.step.options.resources)
        except UnsatisfiableResourcesError as error:
            self._refused.append(Completion(job, failed_result(job, error)))
            return
        data = encode_task(job.task)
        key = f"mlops-lite-{job.invocation}-{job.job_id}-{time.time_ns()}"
        if self._code is None:
            future = self._client.submit(
                run_with_setup, self._setup, data, pure=False, key=key, **placement
            )
        else:
            from mlops_lite.execution.orchestrators.dask_worker import run_pinned_task

            plugin = self._ship_code(self._code)
            future = self._client.submit(
                run_pinned_task,
                plugin,
                self._code.commit,
                self._code.import_paths,
                self.strict_env,
                self._setup,
                data,
                pure=False,
                key=key,
                **placement,
            )
        deadline = time.monotonic() + job.timeout if job.timeout is not None else None
        self._running[future] = (job, time.time(), deadline)

    def _ship_code(self, code: PinnedCode) -> str:
        """Register the plugin that installs ``code`` on every worker (once per run)."""
        if self._plugin is None:
            from mlops_lite.execution.orchestrators.dask_worker import PinnedCodePlugin

            # One name per run: unregistering it at the end never removes another run's.
            name = f"mlops-lite-code-{code.commit[:12]}-{uuid.uuid4().hex[:12]}"
            plugin = PinnedCodePlugin(name, code.commit, pack_tree(code), capture_environment())
            self._client.register_plugin(plugin, name=name)
            self._plugin = name
        return self._plugin

    def _check_environments(self) -> None:
        """Warn (or, with strict_env, fail) when a worker's Python or packages differ from ours."""
        from mlops_lite.execution.orchestrators.dask_worker import worker_environment

        ours = capture_environment()
        found = []
        for address, theirs in sorted(self._client.run(worker_environment).items()):
            differences = environment_differences(
                ours,
                theirs,
                reference_as="here",
                current_as=f"on worker {address}",
                missing_packages=False,
            )
            found += differences
        if not found:
            return
        message = (
            "the Dask workers' environment differs from this one: "
            + "; ".join(found[:10])
            + (f"; and {len(found) - 10} more" if len(found) > 10 else "")
        )
        if self.strict_env:
            raise EnvironmentMismatchError(
                f"{message}. Nothing ran (strict_env is on): install the same versions on the "
                "workers, or run without strict_env to only be warned"
            )
        warnings.warn(message, UserWarning, stacklevel=2)

    def _placement(self, invocation: str, request: ResourceRequest) -> dict[str, Any]:
        """``submit`` arguments that put the step on a worker able to meet ``request``.

        GPUs must be declared by workers (``dask worker --resources GPU=1``). CPUs
        and memory are Dask resources where workers declare ``CPU``/``MEMORY``
        (counted: tasks running at once never exceed them); elsewhere the step is
        restricted to workers with as many threads and as large a memory limit.
        """
        if not request:
            return {}
        workers = self._client.scheduler_info(n_workers=-1)["workers"]
        declared = {kind for info in workers.values() for kind in info.get("resources", {})}
        resources: dict[str, float] = {}
        if request.gpu_count:
            resources["GPU"] = request.gpu_count
        if request.cpu_count and "CPU" in declared:
            resources["CPU"] = request.cpu_count
        if request.memory and "MEMORY" in declared:
            resources["MEMORY"] = request.memory

        def fits(info: dict[str, Any]) -> bool:
            have = info.get("resources", {})
            if any(have.get(kind, 0) < amount for kind, amount in resources.items()):
                return False
            if request.cpu_count and "CPU" not in resources:
                if info.get("nthreads", 0) < request.cpu_count:
                    return False
            limit = info.get("memory_limit") or 0
            return not (request.memory and "MEMORY" not in resources and 0 < limit < request.memory)

        able = sorted(address for address, info in workers.items() if fits(info))
        if not able:
            offered = "; ".join(
                f"{address}: {info.get('nthreads')} threads, "
                f"memory limit {info.get('memory_limit') or 'none'}, "
                f"resources {info.get('resources') or 'none declared'}"
                for address, info in sorted(workers.items())
            )
            raise UnsatisfiableResourcesError(
                f"step {invocation!r} asks for {request.describe()}, and no worker of the Dask "
                f"cluster at {self._client.scheduler.address} can give it ({offered}); start a "
                "worker that declares it, e.g. `dask worker ADDRESS --resources GPU=1` for a "
                "GPU, or lower the step's settings['resources']"
            )
        placement: dict[str, Any] = {"resources": resources} if resources else {}
        by_threads_or_limit = (request.cpu_count and "CPU" not in resources) or (
            request.memory and "MEMORY" not in resources
        )
        if by_threads_or_limit and len(able) < len(workers):
            placement["workers"] = able
        return placement

    def wait(self, timeout: float | None) -> list[Completion]:
        """Collect finished tasks; fail those past their timeout."""
        if self._refused:
            refused, self._refused = self._refused, []
            return refused
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
        if isinstance(problem, MlopsLiteError):
            # Raised by mlops_lite on the worker (strict_env, a missing code plugin): as it is.
            return failed_result(job, problem, started=started)
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
        self._refused.clear()

    def close(self) -> None:
        """Cancel what is left, remove the run's code plugin, disconnect, stop a local cluster."""
        self.cancel_all()
        if self._plugin is not None:
            try:
                self._client.unregister_worker_plugin(self._plugin)
            except Exception:
                logging.getLogger(__name__).debug("could not unregister %s", self._plugin)
            self._plugin = None
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
