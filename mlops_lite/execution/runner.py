"""The driver: plans a traced pipeline, consults the cache, runs steps, records the run.

Only this process writes git objects and refs; steps hand back bytes.
"""

from __future__ import annotations

import inspect
import os
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mlops_lite.context import StepContext
from mlops_lite.errors import StepFailedError
from mlops_lite.execution.environment import capture_environment
from mlops_lite.execution.task import MaterializedOutput, StepResult, StepTask, execute_step
from mlops_lite.fingerprint import code_fingerprint
from mlops_lite.hashing import cache_key as make_cache_key
from mlops_lite.materializers import get_materializer, materializer_for_type
from mlops_lite.pipelines import Invocation, Pipeline, PipelineTrace
from mlops_lite.records import OutputRecord, RunRecord, StepRecord
from mlops_lite.store import GitStore
from mlops_lite.store.artifacts import build_artifact, read_artifact
from mlops_lite.store.codepin import CodePin, pin_code
from mlops_lite.store.index import CacheHit, RunIndex
from mlops_lite.store.runs import RunWriter, StepEntry, build_step_tree, recover_abandoned_runs


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
    """Where the pipeline is defined, relative to the project root, for reruns."""
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
        "argv": list(sys.argv),
        "cwd": os.path.relpath(os.getcwd(), root).replace(os.sep, "/"),
    }


# Set by `mlops-lite rerun` for the subprocess it starts: the run goes into the
# original repository, pinned to the original code commit, caching as asked.
ENV_REPOSITORY = "MLOPS_LITE_REPOSITORY"
ENV_CODE_COMMIT = "MLOPS_LITE_CODE_COMMIT"
ENV_REPRODUCES = "MLOPS_LITE_REPRODUCES"
ENV_ENABLE_CACHE = "MLOPS_LITE_ENABLE_CACHE"


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    return value.lower() not in ("0", "false", "no", "off")


def run_pipeline(pipeline: Pipeline, args: tuple[Any, ...], kwargs: dict[str, Any]) -> RunResult:
    """Run ``pipeline(*args, **kwargs)`` in process and record it; see ``Pipeline.__call__``."""
    parameters = pipeline.bind_parameters(args, kwargs)
    trace = pipeline.trace(parameters)
    store = GitStore.open(os.environ.get(ENV_REPOSITORY) or None)
    try:
        recover_abandoned_runs(store)
        index = RunIndex(store)
        try:
            index.refresh()
            return _Driver(store, index, pipeline, trace, parameters).run()
        finally:
            index.close()
    finally:
        store.close()


class _Driver:
    def __init__(
        self,
        store: GitStore,
        index: RunIndex,
        pipeline: Pipeline,
        trace: PipelineTrace,
        parameters: dict[str, Any],
    ) -> None:
        self.store = store
        self.index = index
        self.pipeline = pipeline
        self.trace = trace
        self.parameters = parameters
        cache_override = _env_flag(ENV_ENABLE_CACHE)
        self.enable_cache = pipeline.options.enable_cache if cache_override is None else cache_override
        # Artifacts produced or reused so far: (invocation, output) -> artifact id.
        self.artifact_ids: dict[tuple[str, str], str] = {}
        # Values already in memory, so downstream steps skip a git read.
        self.payloads: dict[tuple[str, str], MaterializedOutput] = {}
        self.step_records: dict[str, StepRecord] = {}

    def run(self) -> RunResult:
        now = datetime.now(timezone.utc)
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
            orchestrator="local",
            author={"name": identity.name, "email": identity.email},
        )
        writer = RunWriter(self.store, record, pin.commit)
        writer.start()
        failures: list[tuple[str, BaseException | None]] = []
        try:
            for invocation in self.trace.invocations.values():
                entry = self._run_invocation(invocation, record, failures)
                writer.add_step(entry)
        except BaseException as error:
            # Interrupted (Ctrl-C) or an internal error: record what finished.
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
            error = StepFailedError(
                f"step {step_name!r} of pipeline {self.pipeline.name!r} failed: {last_line[0]} "
                f"(run {run_name} recorded as failed; see `mlops-lite logs {run_name} {step_name}`)",
                step_name=step_name,
                run_name=run_name,
            )
            raise error from cause
        return result

    def _finish(self, writer: RunWriter, record: RunRecord) -> RunResult:
        sha = writer.finish(record)
        self.index.add_run(writer.ref, sha, record, self.step_records, writer.code_commit)
        return RunResult(self.store.root, writer.ref, sha, record)

    # one step --------------------------------------------------------------

    def _run_invocation(
        self, invocation: Invocation, record: RunRecord, failures: list[tuple[str, BaseException | None]]
    ) -> StepEntry:
        step = invocation.step
        blocked = [name for name in invocation.upstream if self.step_records[name].status in ("failed", "skipped")]
        base = StepRecord(
            name=invocation.name,
            function=f"{step.entrypoint.__module__}.{step.entrypoint.__qualname__}",
            status="skipped",
            parameters=invocation.parameters,
            upstream=invocation.upstream,
            settings=step.options.recordable(),
            inputs={
                arg: {
                    "artifact_id": self.artifact_ids.get((h.invocation, h.output), ""),
                    "step": h.invocation,
                    "output": h.output,
                }
                for arg, h in invocation.inputs.items()
            },
        )
        if blocked:
            base.error = f"not run: upstream step {blocked[0]!r} did not complete"
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
        enable_cache = step.options.enable_cache if step.options.enable_cache is not None else self.enable_cache
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
        task = StepTask(
            invocation=invocation.name,
            step=step,
            parameters=invocation.parameters,
            inputs={arg: self._input_value(h.invocation, h.output) for arg, h in invocation.inputs.items()},
            context=context,
            seed=bool(step.options.seed),
        )
        result = execute_step(task)
        return self._record_result(base, result, failures)

    def _record_result(
        self, base: StepRecord, result: StepResult, failures: list[tuple[str, BaseException | None]]
    ) -> StepEntry:
        base.start_time = result.start_time
        base.end_time = result.end_time
        base.metadata = result.metadata
        if not result.ok:
            base.status = "failed"
            base.error = result.error
            failures.append((base.name, result.exception))
            return self._record(base, result.logs, {}, [])
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
        return self._record(base, result.logs, output_ids, objects)

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
        for hit in self.index.cache_hits(key):
            # The index is derived: trust it only for objects that are really here.
            if all(self.store.has_object(info["artifact_id"]) for info in hit.outputs.values()):
                return hit
        return None

    def _input_value(self, invocation: str, output: str) -> Any:
        payload = self.payloads.get((invocation, output))
        if payload is not None:
            return get_materializer(payload.materializer).load(payload.payload)
        artifact_id = self.artifact_ids[(invocation, output)]
        meta, data = read_artifact(self.store.read_object, artifact_id)
        # Reusing our own project's cached output: the same trust as running it.
        return get_materializer(meta.materializer).load(data)
