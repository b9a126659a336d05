"""``Client``: read pipelines, runs, steps and artifacts from any process.

Navigation follows ZenML: ``Client().get_pipeline("training").last_run
.steps["train"].outputs["model"].load()``. The client only reads; it never
imports the execution layer.
"""

from __future__ import annotations

import os
import socket
from functools import cached_property
from typing import Any

from mlops_lite.errors import (
    AmbiguousRunError,
    ArtifactNotFoundError,
    PipelineNotFoundError,
    RunNotFoundError,
    StepNotFoundError,
    UntrustedPickleError,
)
from mlops_lite.materializers import get_materializer
from mlops_lite.records import OutputRecord, RunRecord, StepRecord
from mlops_lite.store import RUNS_PREFIX, GitStore
from mlops_lite.store.annotations import read_annotations
from mlops_lite.store.index import RunIndex, RunRow, read_run_commit
from mlops_lite.store.objects import parse_tree
from mlops_lite.store.runs import run_is_live, run_ref
from mlops_lite.trust import TRUST_ENV, pickle_trusted


class Client:
    """Read access to the runs recorded in a project's git repository."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._store = GitStore.open(path)
        self._index: RunIndex | None = None

    @property
    def root(self) -> str:
        return self._store.root

    @property
    def store(self) -> GitStore:
        """The underlying git store (for operations built on the client)."""
        return self._store

    @property
    def index(self) -> RunIndex:
        if self._index is None:
            self._index = RunIndex(self._store)
            self._index.refresh()
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        self._store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # pipelines ---------------------------------------------------------------

    def list_pipelines(self) -> list[PipelineView]:
        return [PipelineView(self, name) for name in self.index.pipelines()]

    def get_pipeline(self, name: str) -> PipelineView:
        if name not in self.index.pipelines():
            known = ", ".join(self.index.pipelines()) or "none yet"
            raise PipelineNotFoundError(f"no run of pipeline {name!r} is recorded (pipelines: {known})")
        return PipelineView(self, name)

    # runs --------------------------------------------------------------------

    def list_runs(
        self, *, pipeline: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[Run]:
        """Runs newest first, optionally of one pipeline and/or one status."""
        if status == "crashed" or status == "running":
            # "crashed" is "running" whose writer is gone: decided per run, not stored.
            rows = self.index.runs(pipeline=pipeline, status="running")
            runs = [run for run in (Run(self, row.sha, row) for row in rows) if run.status == status]
            return runs[:limit] if limit is not None else runs
        rows = self.index.runs(pipeline=pipeline, status=status, limit=limit)
        return [Run(self, row.sha, row) for row in rows]

    def get_run(self, name_or_sha: str) -> Run:
        """A run by name, ``pipeline/name``, full sha or unique sha prefix."""
        text = name_or_sha.strip()
        rows = self.index.find(text)
        if not rows and "/" in text:
            rows = self.index.find(RUNS_PREFIX + text)
        if not rows:
            raise RunNotFoundError(f"no run named {text!r} or with a sha starting with {text!r}")
        if len(rows) > 1:
            names = ", ".join(f"{r.pipeline}/{r.run_name} ({r.sha[:10]})" for r in rows[:5])
            raise AmbiguousRunError(f"{text!r} matches {len(rows)} runs: {names}; give more of the sha")
        return Run(self, rows[0].sha, rows[0])

    # ZenML's names for the same calls, so ported code keeps working.
    get_pipeline_run = get_run
    list_pipeline_runs = list_runs

    def runs_for_code_commit(self, commit: str) -> list[Run]:
        return [Run(self, row.sha, row) for row in self.index.runs(code_commit=commit)]

    # internal reads ------------------------------------------------------------

    def _read(self, object_id: str) -> bytes:
        return self._store.read_object(object_id)


class PipelineView:
    """A pipeline, as seen through its recorded runs."""

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name

    @property
    def runs(self) -> list[Run]:
        return self._client.list_runs(pipeline=self.name)

    @property
    def last_run(self) -> Run:
        runs = self._client.list_runs(pipeline=self.name, limit=1)
        if not runs:
            raise RunNotFoundError(f"pipeline {self.name!r} has no runs")
        return runs[0]

    @property
    def last_successful_run(self) -> Run:
        runs = self._client.list_runs(pipeline=self.name, status="completed", limit=1)
        if not runs:
            raise RunNotFoundError(f"pipeline {self.name!r} has no completed run")
        return runs[0]

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


class Run:
    """One recorded run of a pipeline."""

    def __init__(self, client: Client, sha: str, row: RunRow | None = None) -> None:
        self._client = client
        self.sha = sha
        self._row = row

    @cached_property
    def _loaded(self) -> tuple[RunRecord, dict[str, tuple[int, str]], str]:
        return read_run_commit(self._client._store, self.sha)

    @property
    def record(self) -> RunRecord:
        return self._loaded[0]

    @property
    def name(self) -> str:
        return self._row.run_name if self._row else self.record.run_name

    @property
    def pipeline_name(self) -> str:
        return self._row.pipeline if self._row else self.record.pipeline_name

    @property
    def status(self) -> str:
        status = self._row.status if self._row else self.record.status
        # Only a run started on this machine can be seen to have died: its writer
        # held a lock here. A teammate's run still recording stays "running".
        if (
            status == "running"
            and self.host == socket.gethostname()
            and not run_is_live(self._client._store.state_dir, self.pipeline_name, self.name)
        ):
            return "crashed"
        return status

    @property
    def code_commit(self) -> str:
        return self._loaded[2]

    @property
    def code(self) -> dict[str, Any]:
        return self.record.code

    @property
    def params(self) -> dict[str, Any]:
        return self.record.parameters

    parameters = params

    @property
    def metadata(self) -> dict[str, Any]:
        """Run metadata: logged during the run, then anything added to it later."""
        return {**self.record.metadata, **self._annotations["run"]}

    @cached_property
    def _annotations(self) -> dict[str, Any]:
        return read_annotations(self._client._store, run_ref(self.pipeline_name, self.name))

    @property
    def environment(self) -> dict[str, Any]:
        return self.record.environment

    @property
    def author(self) -> dict[str, str]:
        """``{"name", "email"}``: the git identity of whoever ran it."""
        return self.record.author

    @property
    def author_email(self) -> str | None:
        return self._row.author if self._row else self.record.author.get("email")

    @property
    def host(self) -> str | None:
        """The machine the run executed on."""
        return self._row.host if self._row else self.record.environment.get("host")

    @property
    def start_time(self) -> float:
        return self.record.start_time

    @property
    def end_time(self) -> float | None:
        return self.record.end_time

    @property
    def duration(self) -> float | None:
        end = self.record.end_time
        return None if end is None else end - self.record.start_time

    @property
    def error(self) -> str | None:
        return self.record.error

    @cached_property
    def steps(self) -> dict[str, StepView]:
        """Steps in the order the pipeline defined them (recorded ones only)."""
        entries = self._loaded[1]
        order = [name for name in self.record.step_names if name in entries]
        order += [name for name in entries if name not in order]
        return {name: StepView(self, name, entries[name][1]) for name in order}

    def get_step(self, name: str) -> StepView:
        try:
            return self.steps[name]
        except KeyError:
            raise StepNotFoundError(
                f"run {self.name} has no step {name!r}; steps: {', '.join(self.steps) or 'none'}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "name": self.name,
            "pipeline": self.pipeline_name,
            "status": self.status,
            "code_commit": self.code_commit,
            "code": self.code,
            "parameters": self.params,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration,
            "metadata": self.metadata,
            "author": self.author,
            "error": self.error,
            "steps": {name: step.to_dict() for name, step in self.steps.items()},
        }

    def __repr__(self) -> str:
        return f"<run {self.pipeline_name}/{self.name} {self.status} {self.sha[:10]}>"


class StepView:
    """One step of a run: status, logs, metadata, inputs and outputs."""

    def __init__(self, run: Run, name: str, tree_id: str) -> None:
        self.run = run
        self.name = name
        self._tree_id = tree_id

    @cached_property
    def _entries(self) -> dict[str, tuple[int, str]]:
        return parse_tree(self.run._client._read(self._tree_id))

    @cached_property
    def record(self) -> StepRecord:
        return StepRecord.decode(self.run._client._read(self._entries["step.msgpack"][1]), where=f"step {self.name}")

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def cached(self) -> bool:
        return self.record.cached

    @property
    def cached_from(self) -> dict[str, str] | None:
        return self.record.cached_from

    @property
    def duration(self) -> float | None:
        return self.record.duration

    @property
    def metadata(self) -> dict[str, Any]:
        """Step metadata: logged by the step, then anything added to it later."""
        return {**self.record.metadata, **self.run._annotations["steps"].get(self.name, {})}

    @property
    def parameters(self) -> dict[str, Any]:
        return self.record.parameters

    @property
    def error(self) -> str | None:
        return self.record.error

    @property
    def attempts(self) -> int:
        """How many times the step was tried (more than 1 with retries)."""
        return self.record.attempts

    @property
    def logs(self) -> str:
        entry = self._entries.get("logs.txt")
        return "" if entry is None else self.run._client._read(entry[1]).decode("utf-8", "replace")

    @cached_property
    def outputs(self) -> dict[str, Artifact]:
        return {
            name: Artifact(self.run, self.name, name, OutputRecord(**info))
            for name, info in self.record.outputs.items()
        }

    @property
    def output(self) -> Artifact:
        """The only output, for steps that have exactly one."""
        if len(self.outputs) != 1:
            raise ArtifactNotFoundError(
                f"step {self.name!r} has {len(self.outputs)} outputs ({', '.join(self.outputs) or 'none'}); "
                "use .outputs[name]"
            )
        return next(iter(self.outputs.values()))

    @cached_property
    def inputs(self) -> dict[str, Artifact]:
        result = {}
        for arg, info in self.record.inputs.items():
            upstream = self.run.steps.get(info["step"])
            if upstream is not None and info["output"] in upstream.outputs:
                result[arg] = upstream.outputs[info["output"]]
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "cached": self.cached,
            "cached_from": self.cached_from,
            "duration": self.duration,
            "parameters": self.parameters,
            "metadata": self.metadata,
            "outputs": {name: artifact.to_dict() for name, artifact in self.outputs.items()},
            "inputs": {arg: artifact.artifact_id for arg, artifact in self.inputs.items()},
            "error": self.error,
        }

    def __repr__(self) -> str:
        return f"<step {self.name} {self.status}{' (cached)' if self.cached else ''}>"


class Artifact:
    """A step output stored in git; ``load()`` gives the value back."""

    def __init__(self, run: Run, step_name: str, name: str, record: OutputRecord) -> None:
        self.run = run
        self.step_name = step_name
        self.name = name
        self._record = record

    @property
    def artifact_id(self) -> str:
        return self._record.artifact_id

    id = artifact_id

    @property
    def materializer(self) -> str:
        return self._record.materializer

    @property
    def type_name(self) -> str:
        return self._record.type_name

    @property
    def size(self) -> int:
        return self._record.size

    @property
    def uses_pickle(self) -> bool:
        return self._record.uses_pickle

    def load(self, *, trust_pickle: bool | None = None) -> Any:
        """The value, decoded by the materializer that saved it.

        A pickled value runs code when loaded: it loads without asking only when
        the run was made under your own git identity, ``trust_pickle=True`` is
        given, or ``MLOPS_LITE_TRUST_PICKLE=1`` is set.
        """
        author = self.run.author_email
        own = self.run._client._store.identity.email
        if self.uses_pickle and not pickle_trusted(author, own, explicit=trust_pickle):
            raise UntrustedPickleError(
                f"output {self.name!r} of step {self.step_name!r} (run {self.run.name}, by "
                f"{author or 'unknown'}) is a pickle, and loading it runs code. If you trust its "
                f"author, call load(trust_pickle=True) or set {TRUST_ENV}={author or 1}"
            )
        store = self.run._client._store
        meta, payload = store.read_artifact(self.artifact_id)
        return get_materializer(meta.materializer, version=meta.materializer_version).load(payload)

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_id,
            "materializer": self.materializer,
            "type": self.type_name,
            "size": self.size,
            "uses_pickle": self.uses_pickle,
        }

    def __repr__(self) -> str:
        return f"<artifact {self.step_name}.{self.name} {self.type_name} {self.artifact_id[:10]}>"
