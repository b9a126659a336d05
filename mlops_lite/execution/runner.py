"""The driver: plans a traced pipeline, consults the cache, dispatches steps, records the run.

Only this process writes git objects and refs. Steps run through an
orchestrator (``local`` in this process, ``pool`` worker processes, ``dask``)
and hand back bytes; every ready invocation is dispatched, up to the
orchestrator's capacity, in trace order; cache look-ups, retries and
recording stay here.
"""

from __future__ import annotations

import dataclasses
import heapq
import inspect
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlops_lite.context import StepContext
from mlops_lite.errors import StepFailedError
from mlops_lite.execution.environment import capture_environment
from mlops_lite.execution.orchestrators import Job, Orchestrator, create_orchestrator
from mlops_lite.execution.plan import ReadyQueue
from mlops_lite.execution.stacks import OrchestratorChoice, choose_orchestrator
from mlops_lite.execution.task import MaterializedOutput, StepResult, StepTask
from mlops_lite.fingerprint import code_fingerprint
from mlops_lite.hashing import cache_key as make_cache_key
from mlops_lite.materializers import materializer_for_type
from mlops_lite.pipelines import Invocation, OutputHandle, Pipeline, PipelineTrace
from mlops_lite.records import OutputRecord, RunRecord, StepRecord
from mlops_lite.store import GitStore
from mlops_lite.store.artifacts import build_artifact
from mlops_lite.store.codepin import CodePin, pin_code
from mlops_lite.store.index import CacheHit, RunIndex
from mlops_lite.store.runs import RunWriter, StepEntry, build_step_tree, recover_abandoned_runs
from mlops_lite.trust import pickle_trusted


@dataclass(frozen=True)
class RunResult:
    root: str
    ref: str
    sha: str
    record: RunRecord


def new_run_name(template: str | None, pipeline_name: str, now: datetime) -> str:
    """Unique, time-sortable: ``20261123-114844-123456-3f9a``, or a template's expansion."""
    stamp = now.strftime("%Y%m%d-%H%M%S-%f")
    suffix = secrets.token_hex(2)
    if not template:
        return f"{stamp}-{suffix}"
    return template.format(
        date=now.strftime("%Y_%m_%d"), time=now.strftime("%H_%M_%S_%f"), pipeline=pipeline_name,
        stamp=stamp, random=suffix,
    )


def entry_point_of(pipeline: Pipeline, root: str) -> dict[str, Any]:
    """Where the pipeline is defined, relative to the source root, for reruns.

    The source root is the project root, or the temporary tree a rerun runs in
    (``MLOPS_LITE_SOURCE_ROOT``), so a rerun records paths as the original did.
    """
    root = os.environ.get(ENV_SOURCE_ROOT) or root
    func = pipeline.entrypoint
    try:
        source_file = inspect.getsourcefile(func)
    except TypeError:
        source_file = None
    relative = None
    if source_file and os.path.exists(source_file):
        relative = os.path.relpath(os.path.realpath(source_file), os.path.realpath(root))
    return {
        "module": func.__module__,
        "qualname": func.__qualname__,
        "file": relative.replace(os.sep, "/") if relative else None,
        "argv": redact_secrets(sys.argv),
        "cwd": os.path.relpath(os.getcwd(), root).replace(os.sep, "/"),
    }


_SECRET_WORDS = ("password", "passwd", "secret", "token", "api-key", "api_key", "apikey", "credential", "auth")
REDACTED = "<redacted>"


def redact_secrets(argv: list[str]) -> list[str]:
    """The command line with values of secret-looking options replaced.

    Secrets are never written into a git object, and the command line is: a
    ``--api-key sk-...`` pushed with the run would leak to every teammate.
    """
    redacted: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next and not argument.startswith("-"):
            redacted.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        name, equals, _ = argument.partition("=")
        secret = argument.startswith("-") and any(word in name.lower() for word in _SECRET_WORDS)
        if secret and equals:
            redacted.append(f"{name}={REDACTED}")
        else:
            redacted.append(argument)
            hide_next = secret
    return redacted


# Set by `mlops-lite rerun` for the subprocess it starts: the run goes into the
# original repository, pinned to the original code commit, caching as asked.
ENV_REPOSITORY = "MLOPS_LITE_REPOSITORY"
ENV_CODE_COMMIT = "MLOPS_LITE_CODE_COMMIT"
ENV_REPRODUCES = "MLOPS_LITE_REPRODUCES"
ENV_ENABLE_CACHE = "MLOPS_LITE_ENABLE_CACHE"
ENV_SOURCE_ROOT = "MLOPS_LITE_SOURCE_ROOT"


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    return value.lower() not in ("0", "false", "no", "off")


def run_pipeline(pipeline: Pipeline, args: tuple[Any, ...], kwargs: dict[str, Any]) -> RunResult:
    """Run ``pipeline(*args, **kwargs)`` and record it; see ``Pipeline.__call__``."""
    parameters = pipeline.bind_parameters(args, kwargs)
    trace = pipeline.trace(parameters)
    store = GitStore.open(os.environ.get(ENV_REPOSITORY) or None)
    try:
        # Before anything is recorded: a wrong stack or orchestrator is a ConfigError.
        choice = choose_orchestrator(store.root, pipeline.options.orchestrator, pipeline.options.extra)
        recover_abandoned_runs(store)
        index = RunIndex(store)
        try:
            index.refresh()
            with create_orchestrator(choice.orchestrator, choice.settings) as orchestrator:
                return _Driver(store, index, pipeline, trace, parameters, choice, orchestrator).run()
        finally:
            index.close()
    finally:
        store.close()


Failures = list[tuple[str, BaseException | None]]


@dataclass
class _Attempts:
    """A step being tried: its record so far and the logs of failed attempts."""

    base: StepRecord
    task: StepTask
    earlier_logs: list[str] = field(default_factory=list)


class _Driver:
    def __init__(
        self,
        store: GitStore,
        index: RunIndex,
        pipeline: Pipeline,
        trace: PipelineTrace,
        parameters: dict[str, Any],
        choice: OrchestratorChoice,
        orchestrator: Orchestrator,
    ) -> None:
        self.store = store
        self.index = index
        self.pipeline = pipeline
        self.trace = trace
        self.parameters = parameters
        self.choice = choice
        self.orchestrator = orchestrator
        self.fail_fast = bool(pipeline.options.extra.get("fail_fast", False))
        # The variable overrides every cache setting, the steps' own included:
        # a rerun with MLOPS_LITE_ENABLE_CACHE=0 must execute everything.
        self.cache_override = _env_flag(ENV_ENABLE_CACHE)
        self.enable_cache = pipeline.options.enable_cache if self.cache_override is None else self.cache_override
        # Artifacts produced or reused so far: (invocation, output) -> artifact id.
        self.artifact_ids: dict[tuple[str, str], str] = {}
        # Values already in memory, so downstream steps skip a git read.
        self.payloads: dict[tuple[str, str], MaterializedOutput] = {}
        self.step_records: dict[str, StepRecord] = {}
        self._job_ids = 0

    def run(self) -> RunResult:
        now = datetime.now(UTC)
        run_name = new_run_name(self.pipeline.options.run_name, self.pipeline.name, now)
        pinned = os.environ.get(ENV_CODE_COMMIT)
        if pinned:
            pin = CodePin(commit=pinned, dirty=False, base_commit=pinned, branch=None)
        else:
            pin = pin_code(self.store.root, self.store.git_dir, self.store.identity)
        identity = self.store.identity
        record = RunRecord(
            run_name=run_name,
            pipeline_name=self.pipeline.name,
            status="running",
            start_time=now.timestamp(),
            parameters=self.parameters,
            step_names=list(self.trace.invocations),
            code=pin.to_dict(),
            environment=capture_environment(),
            metadata=dict(self.trace.run_metadata),
            entry_point=entry_point_of(self.pipeline, self.store.root),
            config=dict(self.pipeline.options.config),
            enable_cache=self.enable_cache,
            reproduces=os.environ.get(ENV_REPRODUCES) or None,
            orchestrator=self.choice.orchestrator,
            author={"name": identity.name, "email": identity.email},
            extra={
                "stack": self.choice.stack,
                "orchestrator_source": self.choice.source,
                "orchestrator_settings": self.orchestrator.describe(),
                **({"fail_fast": True} if self.fail_fast else {}),
            },
        )
        writer = RunWriter(self.store, record, pin.commit)
        writer.start()
        failures: Failures = []
        try:
            self._schedule(writer, record, failures)
        except BaseException as error:
            # Interrupted (Ctrl-C) or an internal error: record what finished.
            self.orchestrator.cancel_all()
            record.status = "failed"
            record.error = f"run interrupted: {type(error).__name__}: {error}"
            record.end_time = time.time()
            self._finish(writer, record)
            raise
        record.status = "failed" if failures else "completed"
        record.end_time = time.time()
        if failures:
            record.error = f"step {failures[0][0]!r} failed"
        result = self._finish(writer, record)
        if failures:
            step_name, cause = failures[0]
            step_record = self.step_records[step_name]
            last_line = (step_record.error or "").strip().splitlines()[-1:] or [""]
            failure = StepFailedError(
                f"step {step_name!r} of pipeline {self.pipeline.name!r} failed: {last_line[0]} "
                f"(run {run_name} recorded as failed; see `mlops-lite logs {run_name} {step_name}`)",
                step_name=step_name,
                run_name=run_name,
            )
            raise failure from cause
        return result

    def _finish(self, writer: RunWriter, record: RunRecord) -> RunResult:
        record.step_summary = {
            name: {"status": step.status, "cache_key": step.cache_key, "outputs": step.outputs, "end_time": step.end_time}
            for name, step in self.step_records.items()
        }
        sha = writer.finish(record)
        self.index.add_run(writer.ref, sha, record, self.step_records, writer.code_commit)
        return RunResult(self.store.root, writer.ref, sha, record)

    # dispatching ---------------------------------------------------------------

    def _schedule(self, writer: RunWriter, record: RunRecord, failures: Failures) -> None:
        """Dispatch every ready invocation until all are recorded."""
        plan = ReadyQueue({name: inv.upstream for name, inv in self.trace.invocations.items()})
        runnable: list[tuple[int, str]] = []  # prepared, waiting for capacity; trace order
        attempts: dict[str, _Attempts] = {}
        running: dict[int, Job] = {}
        retries: list[tuple[float, int, Job]] = []  # (due, job id, job)
        stopped: str | None = None  # why nothing more is started (fail_fast)

        def record_entry(entry: StepEntry) -> None:
            writer.add_step(entry)
            plan.done(entry.name)

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
                record_entry(self._record(base, "", {}, []))

        while plan or runnable or running or retries:
            while plan:
                invocation = self.trace.invocations[plan.pop()]
                prepared = self._prepare(invocation, record, stopped)
                if isinstance(prepared, StepEntry):
                    record_entry(prepared)
                else:
                    attempts[invocation.name] = prepared
                    heapq.heappush(runnable, (plan.order(invocation.name), invocation.name))
            now = time.monotonic()
            while retries and retries[0][0] <= now and len(running) < self.orchestrator.capacity:
                _, _, job = heapq.heappop(retries)
                running[job.job_id] = job
                self.orchestrator.submit(job)
            while runnable and len(running) < self.orchestrator.capacity:
                _, name = heapq.heappop(runnable)
                job = self._new_job(attempts[name].task, 1)
                running[job.job_id] = job
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
                step = attempts[job.invocation]
                result = completion.result
                allowed = 1 + max(0, step.task.step.options.retries)
                if not result.ok and job.attempt < allowed and stopped is None:
                    step.earlier_logs.append(_attempt_log(job.attempt, allowed, result))
                    delay = max(0.0, step.task.step.options.retry_delay) * 2 ** (job.attempt - 1)
                    retry = self._new_job(_fresh_context(step.task), job.attempt + 1)
                    heapq.heappush(retries, (time.monotonic() + delay, retry.job_id, retry))
                    continue
                del attempts[job.invocation]
                record_entry(self._record_result(step, job.attempt, result, failures))
                if not result.ok and self.fail_fast and stopped is None:
                    stop(f"step {job.invocation!r} failed and the pipeline runs with fail_fast")

    def _new_job(self, task: StepTask, attempt: int) -> Job:
        self._job_ids += 1
        return Job(self._job_ids, task, task.step.options.timeout, attempt)

    # one step --------------------------------------------------------------

    def _prepare(self, invocation: Invocation, record: RunRecord, stopped: str | None) -> StepEntry | _Attempts:
        """A skipped or cached step's record, or the task to run it."""
        step = invocation.step
        blocked = [name for name in invocation.upstream if self.step_records[name].status in ("failed", "skipped")]
        base = StepRecord(
            name=invocation.name,
            function=f"{step.entrypoint.__module__}.{step.entrypoint.__qualname__}",
            status="skipped",
            parameters=invocation.parameters,
            upstream=invocation.upstream,
            settings=step.options.recordable(),
            inputs={arg: self._input_record(h) for arg, h in _all_inputs(invocation)},
        )
        if blocked:
            base.error = f"not run: upstream step {blocked[0]!r} did not complete"
            return self._record(base, "", {}, [])
        if stopped is not None:
            base.error = f"not run: {stopped}"
            return self._record(base, "", {}, [])
        fingerprint = code_fingerprint(step.entrypoint)
        key = make_cache_key(
            code_fingerprint=fingerprint,
            parameters=invocation.parameters,
            input_artifacts={arg: info["artifact_id"] for arg, info in base.inputs.items()},
            materializers=self._declared_materializers(invocation),
        )
        base.cache_key = key
        base.code_fingerprint = fingerprint
        enable_cache = self.enable_cache
        if step.options.enable_cache is not None and self.cache_override is None:
            enable_cache = step.options.enable_cache
        if enable_cache:
            hit = self._find_cache_hit(key)
            if hit is not None:
                now = time.time()
                base.status = "cached"
                base.cached = True
                base.outputs = hit.outputs
                base.cached_from = {"pipeline": hit.pipeline, "run": hit.run_name, "step": hit.step}
                base.start_time = base.end_time = now
                for output, info in hit.outputs.items():
                    self.artifact_ids[(invocation.name, output)] = info["artifact_id"]
                return self._record(base, "", {o: i["artifact_id"] for o, i in hit.outputs.items()}, [])
        context = StepContext(
            run_name=record.run_name,
            step_name=invocation.name,
            pipeline_name=record.pipeline_name,
            cache_key=key,
            output_names=tuple(o.name for o in step.outputs),
        )
        payloads: dict[str, MaterializedOutput | list[MaterializedOutput]] = {
            arg: self._input_payload(h) for arg, h in invocation.inputs.items()
        }
        for arg, handles in invocation.gathered.items():
            payloads[arg] = [self._input_payload(h) for h in handles]
        task = StepTask(
            invocation=invocation.name,
            step=step,
            parameters=invocation.parameters,
            context=context,
            seed=bool(step.options.seed),
            input_payloads=payloads,
        )
        return _Attempts(base, task)

    def _input_record(self, handle: OutputHandle) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_ids.get((handle.invocation, handle.output), ""),
            "step": handle.invocation,
            "output": handle.output,
        }

    def _record_result(self, step: _Attempts, attempt: int, result: StepResult, failures: Failures) -> StepEntry:
        base = step.base
        base.start_time = result.start_time
        base.end_time = result.end_time
        base.metadata = result.metadata
        logs = "".join([*step.earlier_logs, result.logs])
        base.attempts = attempt
        if not result.ok:
            base.status = "failed"
            base.error = result.error
            failures.append((base.name, result.exception))
            return self._record(base, logs, {}, [])
        objects = []
        output_ids = {}
        for name, output in result.outputs.items():
            artifact_tree, artifact_objects = build_artifact(
                output.payload,
                materializer=output.materializer,
                materializer_version=output.materializer_version,
                type_name=output.type_name,
                uses_pickle=output.uses_pickle,
            )
            objects.extend(artifact_objects)
            output_ids[name] = artifact_tree.id
            self.artifact_ids[(base.name, name)] = artifact_tree.id
            self.payloads[(base.name, name)] = output
            base.outputs[name] = OutputRecord(
                artifact_id=artifact_tree.id,
                materializer=output.materializer,
                materializer_version=output.materializer_version,
                type_name=output.type_name,
                size=len(output.payload),
                uses_pickle=output.uses_pickle,
            ).to_dict()
        base.status = "completed"
        return self._record(base, logs, output_ids, objects)

    def _record(self, record: StepRecord, logs: str, outputs: dict[str, str], objects: list[Any]) -> StepEntry:
        self.step_records[record.name] = record
        step_tree, step_objects = build_step_tree(record, logs, outputs)
        return StepEntry(record.name, step_tree.id, [*objects, *step_objects])

    def _declared_materializers(self, invocation: Invocation) -> dict[str, str]:
        declared = {}
        for output in invocation.step.outputs:
            chosen = invocation.step.options.output_materializers.get(output.name)
            if chosen is None:
                chosen = materializer_for_type(output.annotation)
            declared[output.name] = f"{chosen.name}@{chosen.version}" if chosen is not None else "dynamic"
        return declared

    def _find_cache_hit(self, key: str) -> CacheHit | None:
        own = self.store.identity.email
        for hit in self.index.cache_hits(key):
            # A teammate's pickle would run their code here: reuse it only when trusted.
            if any(info.get("uses_pickle") for info in hit.outputs.values()) and not pickle_trusted(hit.author, own):
                continue
            # The index is derived: trust it only for objects that are really here.
            if all(self.store.has_object(info["artifact_id"]) for info in hit.outputs.values()):
                return hit
        return None

    def _input_payload(self, handle: OutputHandle) -> MaterializedOutput:
        """An input as bytes: from memory when this run made it, else read from git."""
        payload = self.payloads.get((handle.invocation, handle.output))
        if payload is not None:
            return payload
        artifact_id = self.artifact_ids[(handle.invocation, handle.output)]
        meta, data = self.store.read_artifact(artifact_id)
        # Reusing our own project's cached output: the same trust as running it.
        return MaterializedOutput(
            bytes(data), meta.materializer, meta.materializer_version, meta.type_name, meta.uses_pickle
        )


def _all_inputs(invocation: Invocation) -> list[tuple[str, OutputHandle]]:
    """Every input; a gathered argument ``scores`` is recorded as ``scores[0]``, ``scores[1]``…"""
    pairs = list(invocation.inputs.items())
    for arg, handles in invocation.gathered.items():
        pairs += [(f"{arg}[{i}]", handle) for i, handle in enumerate(handles)]
    return pairs


def _fresh_context(task: StepTask) -> StepTask:
    """The same task for another attempt, without metadata logged by the failed one."""
    return dataclasses.replace(task, context=dataclasses.replace(task.context, metadata={}))


def _attempt_log(attempt: int, allowed: int, result: StepResult) -> str:
    last = (result.error or "").strip().splitlines()[-1:] or ["failed"]
    logs = result.logs if not result.logs or result.logs.endswith("\n") else result.logs + "\n"
    return f"{logs}--- mlops-lite: attempt {attempt} of {allowed} failed: {last[0]}; retrying ---\n"
