"""The driver: schedules a traced pipeline's invocations onto an orchestrator.

Only this process writes git objects and refs. Steps run through an
orchestrator (``local`` in this process, ``pool`` worker processes, ``dask``)
and hand back bytes; every ready invocation is dispatched, up to the
orchestrator's capacity, in trace order; cache look-ups, retries and
recording stay here.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from dataclasses import dataclass, field
from typing import Any

from mlops_lite.client import Client, Run
from mlops_lite.core.command import cli_command
from mlops_lite.core.records import StepRecord
from mlops_lite.definition.context import PendingWrite, StepContext
from mlops_lite.definition.parameters import call_parameters
from mlops_lite.definition.pipelines import Pipeline
from mlops_lite.definition.tracing import Invocation, OutputHandle, PipelineTrace
from mlops_lite.errors import OutputTooLargeError, StepFailedError
from mlops_lite.execution import reproduction
from mlops_lite.execution.cache import CacheLookup, cache_enabled, step_cache_key
from mlops_lite.execution.data_files import declared_content_ids
from mlops_lite.execution.interrupts import describe_interruption, terminate_as_interrupt
from mlops_lite.execution.orchestrators import (
    ORCHESTRATOR_SETTINGS,
    Job,
    Orchestrator,
    create_orchestrator,
)
from mlops_lite.execution.plan import ReadyQueue
from mlops_lite.execution.progress import Progress, quiet_requested
from mlops_lite.execution.recorder import RunRecorder
from mlops_lite.execution.registry import RunRegistry
from mlops_lite.execution.shipping import pinned_code
from mlops_lite.execution.stacks import choose_orchestrator
from mlops_lite.execution.task import MaterializedOutput, StepInterrupted, StepResult, StepTask
from mlops_lite.materializers import loading_unpickles
from mlops_lite.store import GitStore
from mlops_lite.store.index import RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.runs import recover_abandoned_runs

__all__ = ["run_pipeline"]


def run_pipeline(
    pipeline: Pipeline, args: tuple[Any, ...], kwargs: dict[str, Any], *, store: Store | None = None
) -> Run:
    """Run ``pipeline(*args, **kwargs)``, record it (in ``store``, else the project's repository).

    Returns the recorded run. A step that fails raises ``StepFailedError`` after
    the run is recorded as failed.
    """
    if pipeline.options.config_path is not None or pipeline.options.config:
        from mlops_lite.definition.config import configure

        # Load and check the configuration before anything runs or is recorded.
        pipeline = configure(pipeline)
    parameters = pipeline.bind_parameters(args, kwargs)
    trace = pipeline.trace(parameters)
    settings = reproduction.current()
    own_store = store is None
    active = store if store is not None else GitStore.open(settings.repository)
    try:
        # Before anything is recorded: a wrong stack or orchestrator is a ConfigError.
        choice = choose_orchestrator(
            active.root, pipeline.options.orchestrator, pipeline.options.extra
        )
        if (
            settings.strict_env is not None
            and "strict_env" in ORCHESTRATOR_SETTINGS[choice.orchestrator]
        ):
            choice = dataclasses.replace(
                choice, settings={**choice.settings, "strict_env": settings.strict_env}
            )
        recover_abandoned_runs(active)
        # Hook: models and artifact-version inputs resolved (or refused) before recording.
        registry = RunRegistry.prepare(active, pipeline, trace)
        index = RunIndex(active)
        try:
            index.refresh()
            with (
                terminate_as_interrupt(),
                create_orchestrator(choice.orchestrator, choice.settings) as orchestrator,
            ):
                enable_cache = cache_enabled(
                    pipeline=pipeline.options.enable_cache,
                    step=None,
                    override=settings.enable_cache,
                )
                recorder = RunRecorder.begin(
                    active,
                    index,
                    pipeline,
                    trace,
                    parameters,
                    choice,
                    orchestrator.describe(),
                    settings,
                    enable_cache,
                )
                orchestrator.use_code(
                    pinned_code(
                        active.root, settings.source_root or active.root, recorder.code_commit
                    )
                )
                sha = _Scheduler(
                    active,
                    index,
                    pipeline,
                    trace,
                    orchestrator,
                    recorder,
                    settings.enable_cache,
                    registry,
                    # Data files are read relative to the code being run: a rerun's tree.
                    data_root=settings.source_root or active.root,
                ).run()
        finally:
            index.close()
    finally:
        if own_store:
            active.close()
    if own_store:
        return Run(Client(active.root), sha)
    return Run(Client(store=active), sha)


Failures = list[tuple[str, BaseException | None]]


@dataclass
class _Attempts:
    """An invocation being tried: its record so far and the logs of failed attempts."""

    base: StepRecord
    task: StepTask
    earlier_logs: list[str] = field(default_factory=list)


class _Scheduler:
    def __init__(
        self,
        store: Store,
        index: RunIndex,
        pipeline: Pipeline,
        trace: PipelineTrace,
        orchestrator: Orchestrator,
        recorder: RunRecorder,
        cache_override: bool | None,
        registry: RunRegistry,
        *,
        data_root: str,
    ) -> None:
        self.store = store
        self.registry = registry
        self.index = index
        self.data_root = data_root
        self.cache = CacheLookup(index, store, data_root)
        self.pipeline = pipeline
        self.trace = trace
        self.orchestrator = orchestrator
        self.recorder = recorder
        self.cache_override = cache_override
        self.fail_fast = bool(pipeline.options.extra.get("fail_fast", False))
        self._job_ids = 0
        self.progress = Progress(
            pipeline.name,
            recorder.record.run_name,
            quiet=quiet_requested(pipeline.options.extra.get("quiet")),
        )

    def run(self) -> str:
        """Dispatch every invocation, record the run, raise for a failed step."""
        failures: Failures = []
        started = time.monotonic()
        self.progress.run_started()
        try:
            # Hook: model versions created or attached once the run is recorded.
            self.registry.start(self.recorder.record)
            self._schedule(failures)
        except KeyboardInterrupt as interruption:
            # Ctrl-C or SIGTERM: the steps are recorded by _schedule; now the run.
            self.recorder.finish(
                "cancelled", f"run cancelled by {describe_interruption(interruption)}"
            )
            self.progress.run_finished("cancelled", time.monotonic() - started)
            inside_step = isinstance(interruption, StepInterrupted)
            original = interruption.__cause__
            if inside_step and isinstance(original, KeyboardInterrupt):
                # The interruption itself, as the caller would have seen it without us
                # (Python ends with the SIGINT status only for a plain KeyboardInterrupt).
                raise original from None
            raise
        except BaseException as error:
            # An internal error: record what finished.
            self.orchestrator.cancel_all()
            self.recorder.finish("failed", f"run interrupted: {type(error).__name__}: {error}")
            raise
        reason = f"step {failures[0][0]!r} failed" if failures else None
        sha = self.recorder.finish("failed" if failures else "completed", reason)
        self.progress.run_finished(self.recorder.record.status, time.monotonic() - started)
        if failures:
            invocation, cause = failures[0]
            record = self.recorder.steps[invocation]
            last_line = (record.error or "").strip().splitlines()[-1:] or [""]
            run_name = self.recorder.record.run_name
            raise StepFailedError(
                f"step {invocation!r} of pipeline {self.pipeline.name!r} failed: {last_line[0]} "
                f"(run {run_name} recorded as failed; "
                f"see `{cli_command()} logs {run_name} {invocation}`)",
                step_name=invocation,
                run_name=run_name,
            ) from cause
        return sha

    # dispatching ---------------------------------------------------------------

    def _schedule(self, failures: Failures) -> None:
        """Dispatch every ready invocation until all are recorded."""
        plan = ReadyQueue(
            {name: invocation.upstream for name, invocation in self.trace.invocations.items()}
        )
        runnable: list[
            tuple[int, str]
        ] = []  # prepared invocations waiting for capacity; trace order
        attempts: dict[str, _Attempts] = {}
        running: dict[int, Job] = {}
        retries: list[tuple[float, int, Job]] = []  # (due, job id, job)
        stopped: str | None = None  # why nothing more is started (fail_fast)

        def record(
            step_record: StepRecord,
            logs: str = "",
            outputs: dict[str, MaterializedOutput] | None = None,
            pending: list[PendingWrite] | None = None,
        ) -> None:
            try:
                self.recorder.record_step(step_record, logs, outputs)
            except OutputTooLargeError as error:
                # Saved, but recording it needed memory it did not find: the step
                # failed, and is recorded so, without its outputs.
                outputs = None
                step_record.status = "failed"
                step_record.outputs = {}
                step_record.error = str(error)
                failures.append((step_record.name, error))
                self.recorder.record_step(step_record, logs)
            # Hook: named outputs versioned and the step's registry writes made, before
            # any step downstream starts.
            self.registry.step_recorded(
                self.trace.invocations[step_record.name],
                step_record,
                pending or [],
                self.recorder.writer,
            )
            self.progress.step_recorded(step_record)
            plan.done(step_record.name)

        def stop(reason: str) -> None:
            nonlocal stopped
            stopped = reason
            self.orchestrator.cancel_all()
            cancelled = [job.invocation for job in running.values()]
            cancelled += [job.invocation for _, _, job in retries] + [name for _, name in runnable]
            running.clear()
            retries.clear()
            runnable.clear()
            for name in sorted(cancelled, key=plan.order):
                base = attempts.pop(name).base
                base.status = "skipped"
                base.error = f"cancelled: {reason}"
                record(base)

        try:
            while plan or runnable or running or retries:
                while plan:
                    invocation = self.trace.invocations[plan.pop()]
                    prepared = self._prepare(invocation, stopped)
                    if isinstance(prepared, StepRecord):
                        record(prepared)
                    else:
                        attempts[invocation.name] = prepared
                        heapq.heappush(runnable, (plan.order(invocation.name), invocation.name))
                now = time.monotonic()
                while (
                    retries and retries[0][0] <= now and len(running) < self.orchestrator.capacity
                ):
                    _, _, job = heapq.heappop(retries)
                    running[job.job_id] = job
                    self._started(job)
                    self.orchestrator.submit(job)
                while runnable and len(running) < self.orchestrator.capacity:
                    _, name = heapq.heappop(runnable)
                    job = self._new_job(attempts[name].task, 1)
                    running[job.job_id] = job
                    self._started(job)
                    self.orchestrator.submit(job)
                if not running:
                    if retries:
                        time.sleep(max(0.0, retries[0][0] - time.monotonic()))
                    continue
                wait_for = max(0.0, retries[0][0] - time.monotonic()) if retries else None
                for completion in self.orchestrator.wait(wait_for):
                    job = completion.job
                    if running.pop(job.job_id, None) is None:
                        continue  # cancelled meanwhile
                    attempt = attempts[job.invocation]
                    result = completion.result
                    allowed = 1 + max(0, attempt.task.step.options.retries)
                    if not result.ok and job.attempt < allowed and stopped is None:
                        attempt.earlier_logs.append(_attempt_log(job.attempt, allowed, result))
                        delay = max(0.0, attempt.task.step.options.retry_delay) * 2 ** (
                            job.attempt - 1
                        )
                        retry = self._new_job(_fresh_context(attempt.task), job.attempt + 1)
                        heapq.heappush(retries, (time.monotonic() + delay, retry.job_id, retry))
                        continue
                    del attempts[job.invocation]
                    step_record, logs, outputs = _result_record(attempt, job.attempt, result)
                    if not result.ok:
                        failures.append((step_record.name, result.exception))
                    record(step_record, logs, outputs, result.pending_writes)
                    if not result.ok and self.fail_fast and stopped is None:
                        stop(f"step {job.invocation!r} failed and the pipeline runs with fail_fast")
        except KeyboardInterrupt as interruption:
            self.orchestrator.cancel_all()
            partial = interruption.result if isinstance(interruption, StepInterrupted) else None
            reason = describe_interruption(interruption)
            for job in sorted(running.values(), key=lambda job: plan.order(job.invocation)):
                attempt = attempts.pop(job.invocation)
                base = attempt.base
                base.status = "cancelled"
                base.attempts = job.attempt
                base.error = f"cancelled by {reason} while it ran"
                logs = "".join(attempt.earlier_logs)
                if partial is not None and partial.invocation == job.invocation:
                    base.start_time, base.end_time = partial.start_time, partial.end_time
                    base.metadata = partial.metadata
                    base.error = partial.error or base.error
                    logs += partial.logs
                record(base, logs)
            for name in sorted(attempts, key=plan.order):
                base = attempts[name].base
                base.error = f"not run: the run was cancelled by {reason}"
                record(base)
            raise

    def _started(self, job: Job) -> None:
        self.recorder.step_started(job.invocation)
        self.progress.step_started(job.invocation, job.attempt)

    def _new_job(self, task: StepTask, attempt: int) -> Job:
        self._job_ids += 1
        return Job(self._job_ids, task, task.step.options.timeout, attempt)

    # one invocation ------------------------------------------------------------

    def _prepare(self, invocation: Invocation, stopped: str | None) -> StepRecord | _Attempts:
        """A skipped or cached invocation's record, or the task that runs it."""
        step = invocation.step
        steps = self.recorder.steps
        blocked = [
            name for name in invocation.upstream if steps[name].status in ("failed", "skipped")
        ]
        base = StepRecord(
            name=invocation.name,
            function=f"{step.entrypoint.__module__}.{step.entrypoint.__qualname__}",
            status="skipped",
            parameters=invocation.parameters,
            upstream=invocation.upstream,
            settings=step.options.recordable(),
            inputs={
                argument: self._input_record(handle) for argument, handle in _all_inputs(invocation)
            },
        )
        base.inputs.update(self.registry.input_records(invocation))
        if blocked:
            base.error = f"not run: upstream step {blocked[0]!r} did not complete"
            return base
        if stopped is not None:
            base.error = f"not run: {stopped}"
            return base
        declared = (
            declared_content_ids(self.data_root, step.options.data, invocation.name)
            if step.options.data
            else {}
        )
        base.data_files = declared
        key, fingerprint = step_cache_key(
            step,
            invocation.parameters,
            {argument: info["artifact_id"] for argument, info in base.inputs.items()},
            declared,
        )
        base.cache_key = key
        base.code_fingerprint = fingerprint
        use_cache = cache_enabled(
            pipeline=self.pipeline.options.enable_cache,
            step=step.options.enable_cache,
            override=self.cache_override,
        )
        if use_cache:
            reused = self.cache.find(key)
            if reused is not None:
                base.status = "cached"
                base.cached = True
                base.outputs = dict(reused.outputs)
                base.cached_from = reused.origin
                # As ZenML shows it: a cached step carries its execution's metadata.
                base.metadata = dict(reused.metadata)
                base.metadata_inherited = True
                base.data_files = {**reused.data_files, **declared}
                base.start_time = base.end_time = time.time()
                return base
        record = self.recorder.record
        context = StepContext(
            run_name=record.run_name,
            step_name=invocation.name,
            pipeline_name=record.pipeline_name,
            cache_key=key,
            output_names=tuple(output.name for output in step.outputs),
            **self.registry.step_context(invocation),
        )
        payloads: dict[str, MaterializedOutput | list[MaterializedOutput]] = {
            argument: self._input_payload(handle) for argument, handle in invocation.inputs.items()
        }
        payloads.update(self.registry.input_payloads(invocation))
        for argument, handles in invocation.gathered.items():
            payloads[argument] = [self._input_payload(handle) for handle in handles]
        task = StepTask(
            invocation=invocation.name,
            step=step,
            parameters=call_parameters(step.entrypoint, invocation.parameters),
            context=context,
            seed=bool(step.options.seed),
            data_root=self.data_root,
            live_log=self.recorder.live_log(invocation.name),
            input_payloads=payloads,
        )
        return _Attempts(base, task)

    def _input_record(self, handle: OutputHandle) -> dict[str, str]:
        return {
            "artifact_id": self.recorder.artifact_id(handle.invocation, handle.output) or "",
            "step": handle.invocation,
            "output": handle.output,
        }

    def _input_payload(self, handle: OutputHandle) -> MaterializedOutput:
        """An input as bytes: from memory when this run made it, else read from git."""
        payload = self.recorder.payloads.get((handle.invocation, handle.output))
        if payload is not None:
            return payload
        output = self.recorder.output_record(handle.invocation, handle.output)
        assert output is not None
        meta, data = self.store.read_artifact(
            output.artifact_id,
            digest=output.digest,
            where=(
                f"output {handle.output!r} of step {handle.invocation!r} "
                f"(run {self.recorder.record.run_name}, reused from the cache)"
            ),
        )
        return MaterializedOutput(
            bytes(data),
            meta.materializer,
            meta.materializer_version,
            meta.type_name,
            loading_unpickles(meta.materializer),
            # Read from git only as the output of a cache hit, and find_cache_hit
            # passes over hits whose pickles come from runs not trusted here.
            may_unpickle=True,
        )


def _result_record(
    attempt: _Attempts, tries: int, result: StepResult
) -> tuple[StepRecord, str, dict[str, MaterializedOutput]]:
    """The record of an executed invocation, its logs and its outputs."""
    base = attempt.base
    base.start_time = result.start_time
    base.end_time = result.end_time
    base.metadata = result.metadata
    base.data_files = {**result.data_files, **base.data_files}
    base.attempts = tries
    logs = "".join([*attempt.earlier_logs, result.logs])
    if not result.ok:
        base.status = "failed"
        base.error = result.error
        return base, logs, {}
    base.status = "completed"
    return base, logs, result.outputs


def _all_inputs(invocation: Invocation) -> list[tuple[str, OutputHandle]]:
    """Every input; a gathered argument ``scores`` is recorded as ``scores[0]``, ``scores[1]``..."""
    pairs = list(invocation.inputs.items())
    for argument, handles in invocation.gathered.items():
        pairs += [(f"{argument}[{i}]", handle) for i, handle in enumerate(handles)]
    return pairs


def _fresh_context(task: StepTask) -> StepTask:
    """The same task for another attempt, without metadata logged by the failed one."""
    return dataclasses.replace(
        task, context=dataclasses.replace(task.context, metadata={}, pending_writes=[])
    )


def _retry_delay(task: StepTask, attempt: int) -> float:
    """Seconds before the next attempt: the step's retry delay, doubled after each failure."""
    return float(max(0.0, task.step.options.retry_delay) * 2 ** (attempt - 1))


def _attempt_log(attempt: int, allowed: int, result: StepResult) -> str:
    last = (result.error or "").strip().splitlines()[-1:] or ["failed"]
    logs = result.logs if not result.logs or result.logs.endswith("\n") else result.logs + "\n"
    return f"{logs}--- mlops-lite: attempt {attempt} of {allowed} failed: {last[0]}; retrying ---\n"
