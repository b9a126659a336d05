"""Recording a run as it executes: its record, each step's record, and the finished run."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mlops_lite.core.ids import ArtifactId, CommitId
from mlops_lite.core.records import OutputRecord, RunRecord, StepRecord
from mlops_lite.core.secrets import contains_secret, scrub_text, scrub_value
from mlops_lite.core.status import RunStatus
from mlops_lite.definition.pipelines import Pipeline
from mlops_lite.definition.tracing import PipelineTrace
from mlops_lite.errors import UnrecordableParameterError
from mlops_lite.execution.entrypoint import entry_point_of
from mlops_lite.execution.environment import capture_environment
from mlops_lite.execution.naming import new_run_name
from mlops_lite.execution.reproduction import Reproduction
from mlops_lite.execution.stacks import OrchestratorChoice
from mlops_lite.execution.task import MaterializedOutput
from mlops_lite.store.codepin import CodePin
from mlops_lite.store.index import RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.journal import STARTED_STEPS, live_logs_directory
from mlops_lite.store.runs import RunWriter

__all__ = ["RunRecorder"]


class RunRecorder:
    """One run being recorded: the run record, the steps recorded so far, their outputs."""

    def __init__(self, store: Store, index: RunIndex, record: RunRecord, code_commit: str) -> None:
        self.store = store
        self.index = index
        self.record = record
        self.writer = RunWriter(store, record, code_commit)
        self.steps: dict[str, StepRecord] = {}
        # Outputs of steps executed in this run, kept for the steps downstream.
        self.payloads: dict[tuple[str, str], MaterializedOutput] = {}
        # Running steps append their logs here (one file each) for `logs -f`, and
        # each step's start is a line of its `started` file, for `runs show`.
        self.live_logs: str | None = None
        self._started: int | None = None

    @classmethod
    def begin(
        cls,
        store: Store,
        index: RunIndex,
        pipeline: Pipeline,
        trace: PipelineTrace,
        parameters: dict[str, Any],
        choice: OrchestratorChoice,
        settings: Mapping[str, Any],
        reproduction: Reproduction,
        enable_cache: bool,
    ) -> RunRecorder:
        """Name the run, pin its code, and record it as ``running``."""
        now = datetime.now(UTC)
        if reproduction.code_commit:
            pin = CodePin(
                commit=reproduction.code_commit,
                dirty=False,
                base_commit=reproduction.code_commit,
                branch=None,
            )
        else:
            pin = store.pin_code()
        identity = store.identity
        fail_fast = bool(pipeline.options.extra.get("fail_fast", False))
        record = RunRecord(
            run_name=new_run_name(pipeline.options.run_name, pipeline.name, now),
            pipeline_name=pipeline.name,
            status="running",
            start_time=now.timestamp(),
            parameters=parameters,
            step_names=list(trace.invocations),
            code=pin.to_dict(),
            environment=capture_environment(),
            metadata=scrub_value(dict(trace.run_metadata)),
            entry_point=entry_point_of(pipeline, reproduction.source_root or store.root),
            config=dict(pipeline.options.config),
            enable_cache=enable_cache,
            reproduces=reproduction.reproduces,
            orchestrator=choice.orchestrator,
            author={"name": identity.name, "email": identity.email},
            extra={
                "stack": choice.stack,
                "orchestrator_source": choice.source,
                "orchestrator_settings": dict(settings),
                **({"fail_fast": True} if fail_fast else {}),
            },
        )
        _refuse_secret_parameters(pipeline.name, parameters, trace)
        recorder = cls(store, index, record, pin.commit)
        recorder.writer.start()
        if store.state_dir is not None:
            recorder.live_logs = live_logs_directory(store.state_dir, recorder.ref)
            os.makedirs(recorder.live_logs, exist_ok=True)
            recorder._started = os.open(
                os.path.join(recorder.live_logs, STARTED_STEPS),
                os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                0o644,
            )
        return recorder

    def step_started(self, step: str) -> None:
        """Note that ``step`` is running now (one append, no git work)."""
        if self._started is not None:
            os.write(self._started, f"{step}\t{time.time()}\n".encode())

    def live_log(self, step: str) -> str | None:
        """The file a running step's logs go to, if this run has any."""
        return None if self.live_logs is None else os.path.join(self.live_logs, f"{step}.log")

    @property
    def ref(self) -> str:
        """The run's ref."""
        return self.writer.ref

    @property
    def code_commit(self) -> str:
        """The commit the run is pinned to: ``HEAD``, a snapshot of a dirty tree, or a rerun's."""
        return self.writer.code_commit

    def artifact_id(self, step: str, output: str) -> ArtifactId | None:
        """The artifact a recorded step's output is stored as."""
        found = self.output_record(step, output)
        return found.artifact_id if found is not None else None

    def output_record(self, step: str, output: str) -> OutputRecord | None:
        """What was recorded about a recorded step's output (its artifact, its digest)."""
        record = self.steps.get(step)
        return record.outputs.get(output) if record is not None else None

    def record_step(
        self,
        record: StepRecord,
        logs: str = "",
        outputs: Mapping[str, MaterializedOutput] | None = None,
    ) -> None:
        """Record one step; ``outputs`` are the values it produced (none for a cached step)."""
        # Again here: the driver knows the secrets it handed out, a worker its own.
        record.metadata = scrub_value(record.metadata)
        record.error = scrub_text(record.error) if record.error else record.error
        self.writer.record_step(record, scrub_text(logs), outputs)
        self.steps[record.name] = record
        for name, output in (outputs or {}).items():
            self.payloads[(record.name, name)] = output

    def finish(self, status: RunStatus, error: str | None = None) -> CommitId:
        """Record the run's end: the final commit, the ref moved once, the index updated."""
        record = self.record
        record.status = status
        record.error = scrub_text(error) if error else error
        record.metadata = scrub_value(record.metadata)
        record.end_time = time.time()
        record.step_summary = {name: step.summary() for name, step in self.steps.items()}
        sha = self.writer.finish(record)
        self.index.add_run(self.ref, sha, record, self.steps, self.writer.code_commit)
        self.store.maintain(individual_runs=self.index.individual_count())
        if self._started is not None:
            os.close(self._started)
            self._started = None
        if self.live_logs is not None:
            shutil.rmtree(self.live_logs, ignore_errors=True)
        return sha


def _refuse_secret_parameters(
    pipeline_name: str, parameters: Mapping[str, Any], trace: PipelineTrace
) -> None:
    """Refuse, before anything is recorded, a parameter holding a value from ``secret()``.

    Parameters are recorded in git and pushed with the run, and cannot be
    scrubbed without recording a lie (a rerun would pass ``<redacted>``).
    """
    places = [(f"pipeline {pipeline_name!r}", parameters)]
    places += [(f"step {name!r}", step.parameters) for name, step in trace.invocations.items()]
    for where, values in places:
        for name, value in values.items():
            if contains_secret(value):
                raise UnrecordableParameterError(
                    f"parameter {name!r} of {where} holds a value returned by "
                    "mlops_lite.secret(); parameters are recorded in git and pushed with the "
                    "run. Call mlops_lite.secret() inside the step that needs it instead"
                )
