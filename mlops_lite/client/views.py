"""What ``Client`` returns: views of recorded pipelines, runs, step runs and artifacts.

Views read lazily: a listed ``Run`` holds its index row and reads its record
only when asked for something the row does not have.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_lite.core.ids import ArtifactId, CommitId, stable_uuid
from mlops_lite.core.log import LazyLogger
from mlops_lite.core.names import did_you_mean
from mlops_lite.core.records import OutputRecord, RunRecord, StepRecord
from mlops_lite.errors import (
    ArtifactNotFoundError,
    MlopsLiteError,
    NameNotFoundError,
    RunNotFoundError,
    StepNotFoundError,
    UntrustedPickleError,
)
from mlops_lite.store.index import RunRow
from mlops_lite.store.layout import (
    STEP_LOGS,
    RunCommit,
    read_run_commit,
    read_step_entries,
    read_step_record,
    run_ref,
)
from mlops_lite.store.objects import BLOB, GitObject

if TYPE_CHECKING:
    import uuid

    from mlops_lite.client.client import Client
    from mlops_lite.client.registry import ArtifactVersion, ModelVersion
    from mlops_lite.store.annotations import Annotations
    from mlops_lite.store.artifacts import ArtifactMeta

# Listing runs reads index rows only: what loading artifacts, live runs, metadata
# added later and trust need (materializers, the journal, annotations) is imported
# where it is used, so `mlops-lite runs list` does not start by loading it.

__all__ = ["Artifact", "NamedMapping", "RecordedPipeline", "Run", "StepRun"]

_V = TypeVar("_V")


class NamedMapping(dict[str, _V]):
    """A dict whose missing keys raise an error listing the names there are, with the closest."""

    def __init__(self, items: dict[str, _V], missing: Callable[[str], NameNotFoundError]) -> None:
        super().__init__(items)
        self._missing = missing

    def __missing__(self, key: str) -> _V:
        raise self._missing(key)


def _names_error(
    error: type[NameNotFoundError], owner: str, kind: str, key: str, names: list[str]
) -> NameNotFoundError:
    """``run X has no step 'trian'; did you mean 'train'? steps: load, train``."""
    return error(
        f"{owner} has no {kind} {key!r}; {did_you_mean(key, names)}"
        f"{kind}s: {', '.join(names) or 'none'}"
    )


logger = LazyLogger(__name__)


class RecordedPipeline:
    """A pipeline, as seen through its recorded runs."""

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name

    @property
    def runs(self) -> list[Run]:
        """Every run of the pipeline, newest first."""
        return self._client.list_pipeline_runs(pipeline=self.name)

    @property
    def last_run(self) -> Run:
        """The newest run, whatever its status."""
        runs = self._client.list_pipeline_runs(pipeline=self.name, limit=1)
        if not runs:
            raise RunNotFoundError(f"pipeline {self.name!r} has no runs")
        return runs[0]

    @property
    def last_successful_run(self) -> Run:
        """The newest completed run."""
        runs = self._client.list_pipeline_runs(pipeline=self.name, status="completed", limit=1)
        if not runs:
            raise RunNotFoundError(f"pipeline {self.name!r} has no completed run")
        return runs[0]

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


class Run:
    """One recorded run of a pipeline."""

    def __init__(self, client: Client, sha: str, row: RunRow | None = None) -> None:
        self._client = client
        self.sha = CommitId(sha)
        self._row = row

    @cached_property
    def _commit(self) -> RunCommit:
        return read_run_commit(self._client._store.read_object, self.sha)

    @cached_property
    def _live(self) -> _LiveSteps | None:
        """For a run still being recorded on this machine: its finished and running steps."""
        from mlops_lite.store.journal import STARTED_STEPS, live_logs_directory, read_live_journal

        state_dir = self._client._store.state_dir
        if state_dir is None or self.record.status != "running":
            return None
        journal = read_live_journal(state_dir, self.ref)
        if journal is None or journal[0].running_commit != self.sha:
            return None
        entries = journal[1]
        objects = {obj.id: obj for entry in entries for obj in entry.objects}
        finished = {entry.step_name: entry.tree_id for entry in entries}
        logs = live_logs_directory(state_dir, self.ref)
        running: dict[str, tuple[str, float | None]] = {}
        try:
            with open(os.path.join(logs, STARTED_STEPS), encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            name, _, started = line.partition("\t")
            if name and name not in finished:
                running[name] = (os.path.join(logs, f"{name}.log"), _float_or_none(started))
        return _LiveSteps(objects, finished, running)

    def _read_object(self, object_id: str, kind: int | None = None) -> bytes:
        live = self._live
        found = live.objects.get(object_id) if live is not None else None
        if found is None or (kind is not None and found.type_num != kind):
            return self._client._store.read_object(object_id, kind)  # it raises the right error
        return bytes(found.data)

    @property
    def record(self) -> RunRecord:
        """The run's record, as stored."""
        return self._commit.record

    @property
    def name(self) -> str:
        """The run's name (unique, sortable by time)."""
        return self._row.run_name if self._row else self.record.run_name

    @property
    def pipeline_name(self) -> str:
        """The pipeline this is a run of."""
        return self._row.pipeline if self._row else self.record.pipeline_name

    @property
    def ref(self) -> str:
        """The git ref the run is recorded under."""
        return self._row.ref if self._row else run_ref(self.pipeline_name, self.name)

    @property
    def status(self) -> str:
        """``running``, ``completed``, ``failed``, ``crashed``, ``cancelled``, ``unreadable``."""
        status = self._row.status if self._row else self.record.status
        # Only a run started on this machine can be seen to have died: its writer
        # held a lock here. A teammate's run still recording stays "running".
        state_dir = self._client._store.state_dir
        if status != "running" or state_dir is None:
            return status
        import socket

        from mlops_lite.store.journal import run_is_live

        if self.host == socket.gethostname() and not run_is_live(state_dir, self.ref):
            return "crashed"
        return status

    @property
    def code_commit(self) -> CommitId:
        """The commit the run is pinned to: ``HEAD`` then, or a snapshot of the dirty tree."""
        if self._row is not None and self._row.code_commit:
            return CommitId(self._row.code_commit)
        return self._commit.code_commit

    @property
    def code(self) -> dict[str, Any]:
        """How the code was pinned: ``commit``, ``dirty``, ``base_commit``, ``branch``."""
        return self.record.code

    @property
    def parameters(self) -> dict[str, Any]:
        """The pipeline's parameters, as called (from the run index when it holds them)."""
        if self._row is not None:
            indexed = self._row.unpacked("parameters")
            if indexed is not None:
                return indexed
        return self.record.parameters

    @property
    def config(self) -> dict[str, Any]:
        """The configuration file's content the run was called with."""
        return self.record.config

    @property
    def metadata(self) -> dict[str, Any]:
        """Run metadata: logged during the run, then anything added to it later."""
        recorded = self._row.unpacked("metadata") if self._row is not None else None
        if recorded is None:
            recorded = self.record.metadata
        elif not self._client._is_annotated(self.ref):
            return recorded  # decoded just now: the caller's own dict (25,000 runs in < 1 s)
        return {**recorded, **self._annotations["run"]}

    @property
    def run_metadata(self) -> dict[str, Any]:
        """ZenML's name for ``metadata``."""
        return self.metadata

    @property
    def id(self) -> uuid.UUID:
        """A UUID derived from the run's ref; ``get_step_context().pipeline_run.id`` is the same."""
        return stable_uuid("run", self.pipeline_name, self.name)

    @property
    def model_version(self) -> ModelVersion | None:
        """The model version the run worked on (``@pipeline(model=...)``), if any."""
        model = self.record.extra.get("model")
        if not isinstance(model, dict) or not model.get("version_id"):
            return None
        try:
            return self._client.get_model_version(str(model.get("name")), str(model["version_id"]))
        except (LookupError, ValueError):
            return None

    @cached_property
    def _annotations(self) -> Annotations:
        # Most runs have no metadata added later: the client lists which do, once.
        if not self._client._is_annotated(self.ref):
            return {"run": {}, "steps": {}}
        from mlops_lite.store.annotations import read_annotations

        # Metadata added later lives under its own ref, which anyone can push:
        # when it cannot be read, the run itself still can (with a warning).
        try:
            return read_annotations(self._client._store, self.ref)
        except MlopsLiteError as error:
            logger.warning(
                "mlops-lite: metadata added later to run %s cannot be read (%s); "
                "showing what the run recorded",
                self.name,
                error,
            )
            return {"run": {}, "steps": {}}

    @property
    def environment(self) -> dict[str, Any]:
        """Interpreter, platform, host and package versions the run executed with."""
        return self.record.environment

    @property
    def author(self) -> dict[str, str]:
        """``{"name", "email"}``: the git identity of whoever ran it."""
        row = self._row
        if row is not None and row.author_name is not None and row.author is not None:
            return {"name": row.author_name, "email": row.author}
        return self.record.author

    @property
    def author_email(self) -> str | None:
        """The e-mail of whoever ran it."""
        return self._row.author if self._row else self.record.author.get("email")

    @property
    def host(self) -> str | None:
        """The machine the run executed on."""
        return self._row.host if self._row else self.record.environment.get("host")

    @property
    def orchestrator(self) -> str:
        """Where its steps ran: ``local``, ``pool`` or ``dask``."""
        return self.record.orchestrator

    @property
    def stack(self) -> str | None:
        """The stack the orchestrator came from."""
        stack = self.record.extra.get("stack")
        return str(stack) if stack else None

    @property
    def reproduces(self) -> str | None:
        """The sha of the run this one reproduces (``mlops-lite rerun``)."""
        return self.record.reproduces

    @property
    def start_time(self) -> float | None:
        """When it started (seconds since the epoch)."""
        if self._row is not None:
            return self._row.start_time
        return self.record.start_time

    @property
    def end_time(self) -> float | None:
        """When it ended, if it did."""
        if self._row is not None:
            return self._row.end_time
        return self.record.end_time

    @property
    def duration(self) -> float | None:
        """Seconds from start to end."""
        start, end = self.start_time, self.end_time
        return None if end is None or start is None else end - start

    @property
    def error(self) -> str | None:
        """Why it failed, if it did (for an ``unreadable`` run: why it cannot be read)."""
        if self._row is not None and self._row.status == "unreadable":
            return self._row.reason
        return self.record.error

    @cached_property
    def steps(self) -> dict[str, StepRun]:
        """Steps in the pipeline's order: recorded ones, and while it runs here, running ones."""
        entries: dict[str, str | None] = dict(self._commit.steps)
        live = self._live
        running: dict[str, tuple[str, float | None]] = {}
        if live is not None:
            entries.update(live.finished)
            running = live.running
            entries.update(dict.fromkeys(running))
        order = [name for name in self.record.step_names if name in entries]
        order += [name for name in entries if name not in order]
        return NamedMapping(
            {name: StepRun(self, name, entries[name], running.get(name)) for name in order},
            lambda key: _names_error(StepNotFoundError, f"run {self.name}", "step", key, order),
        )

    def get_step(self, name: str) -> StepRun:
        """A step by invocation name; ``StepNotFoundError`` listing the steps otherwise."""
        return self.steps[name]

    @property
    def readable(self) -> bool:
        """False for a run listed as ``unreadable``: its ``error`` says why, its record raises."""
        return self._row is None or self._row.status != "unreadable"

    def to_dict(self) -> dict[str, Any]:
        """Everything about the run as JSON-ready data (what is known, for an unreadable one)."""
        if not self.readable:
            return {
                "sha": self.sha,
                "name": self.name,
                "pipeline": self.pipeline_name,
                "status": self.status,
                "error": self.error,
            }
        return {
            "sha": self.sha,
            "name": self.name,
            "pipeline": self.pipeline_name,
            "status": self.status,
            "code_commit": self.code_commit,
            "code": self.code,
            "parameters": self.parameters,
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


@dataclass(frozen=True)
class _LiveSteps:
    """What the journal and the live log files of a running run say about its steps."""

    objects: dict[str, GitObject]
    finished: dict[str, str]  # step -> its subtree, in the journal
    running: dict[str, tuple[str, float | None]]  # step -> (its live log file, start time)


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class StepRun:
    """One step of a run: status, logs, metadata, inputs and outputs."""

    def __init__(
        self,
        run: Run,
        name: str,
        tree_id: str | None,
        running: tuple[str, float | None] | None = None,
    ) -> None:
        self.run = run
        self.name = name
        self._tree_id = tree_id
        # A step still running: (the file its logs go to, when it started).
        self._live_log: str | None = running[0] if running is not None else None
        self._started: float | None = running[1] if running is not None else None

    def _read(self, object_id: str, kind: int | None = None) -> bytes:
        return self.run._read_object(object_id, kind)

    @cached_property
    def record(self) -> StepRecord:
        """The step's record, as stored (for a step still running: ``status="running"``)."""
        if self._tree_id is None:
            return StepRecord(
                name=self.name, function="", status="running", start_time=self._started
            )
        return read_step_record(
            self._read, self._tree_id, where=f"step {self.name} of run {self.run.name}"
        )

    @property
    def status(self) -> str:
        """``completed``, ``cached``, ``failed``, ``skipped``, ``cancelled`` or ``running``."""
        return self.record.status

    @property
    def cached(self) -> bool:
        """Whether an earlier execution was reused."""
        return self.record.cached

    @property
    def cached_from(self) -> dict[str, str] | None:
        """For a cache hit: the ``pipeline``, ``run`` and ``step`` that produced the outputs."""
        return self.record.cached_from

    @property
    def duration(self) -> float | None:
        """Seconds the step ran."""
        return self.record.duration

    @property
    def metadata(self) -> dict[str, Any]:
        """Step metadata: logged by the step, then anything added to it later."""
        return {**self.record.metadata, **self.run._annotations["steps"].get(self.name, {})}

    @property
    def run_metadata(self) -> dict[str, Any]:
        """ZenML's name for ``metadata``."""
        return self.metadata

    @property
    def id(self) -> uuid.UUID:
        """A UUID derived from the run and step (``ArtifactVersion.producer_step_run_id``)."""
        return stable_uuid("step", self.run.pipeline_name, self.run.name, self.name)

    @property
    def metadata_inherited(self) -> bool:
        """Whether ``metadata`` came with a cache hit, from the execution it reuses."""
        return self.record.metadata_inherited

    @property
    def data_files(self) -> dict[str, str]:
        """``{path: content id}`` of the work tree's files the step read (or declared)."""
        return self.record.data_files

    @property
    def parameters(self) -> dict[str, Any]:
        """The step's parameters (arguments that are not step outputs)."""
        return self.record.parameters

    @property
    def error(self) -> str | None:
        """The traceback, when the step failed."""
        return self.record.error

    @property
    def attempts(self) -> int:
        """How many times the step was tried (more than 1 with retries)."""
        return self.record.attempts

    @property
    def logs(self) -> str:
        """What the step printed and logged (so far, while it runs)."""
        if self._tree_id is None:
            try:
                with open(self._live_log or "", "rb") as f:
                    return f.read().decode("utf-8", "replace")
            except OSError:
                return ""
        entry = read_step_entries(self._read, self._tree_id).get(STEP_LOGS)
        return "" if entry is None else self._read(entry[1], BLOB).decode("utf-8", "replace")

    @cached_property
    def outputs(self) -> dict[str, Artifact]:
        """The step's outputs by name."""
        names = list(self.record.outputs)
        owner = f"step {self.name!r} of run {self.run.name}"
        return NamedMapping(
            {
                name: Artifact(self.run, self.name, name, output)
                for name, output in self.record.outputs.items()
            },
            lambda key: _names_error(ArtifactNotFoundError, owner, "output", key, names),
        )

    @property
    def output(self) -> Artifact:
        """The only output, for steps that have exactly one."""
        if len(self.outputs) != 1:
            raise ArtifactNotFoundError(
                f"step {self.name!r} has {len(self.outputs)} outputs "
                f"({', '.join(self.outputs) or 'none'}); use .outputs[name]"
            )
        return next(iter(self.outputs.values()))

    @cached_property
    def inputs(self) -> dict[str, Artifact]:
        """The outputs of this run's steps that the step received, by argument name."""
        result = {}
        for argument, info in self.record.inputs.items():
            upstream = self.run.steps.get(info.get("step", ""))
            if upstream is not None and info.get("output") in upstream.outputs:
                result[argument] = upstream.outputs[info["output"]]
        return result

    @cached_property
    def input_versions(self) -> dict[str, ArtifactVersion]:
        """The existing artifact versions the step received, by argument name.

        Passed in the pipeline body (``Client().get_artifact_version(...)``, a
        model's ``get_artifact(...)``), they are recorded as the step's lineage.
        """
        result = {}
        for argument, info in self.record.inputs.items():
            if info.get("version_id"):
                try:
                    result[argument] = self.run._client.get_artifact_version(info["version_id"])
                except (LookupError, ValueError):
                    continue  # its registry is not in this clone
        return result

    def to_dict(self) -> dict[str, Any]:
        """Everything about the step as JSON-ready data."""
        return {
            "name": self.name,
            "status": self.status,
            "cached": self.cached,
            "cached_from": self.cached_from,
            "duration": self.duration,
            "parameters": self.parameters,
            "metadata": self.metadata,
            "metadata_inherited": self.metadata_inherited,
            "data_files": self.data_files,
            "outputs": {name: artifact.to_dict() for name, artifact in self.outputs.items()},
            "inputs": {argument: artifact.id for argument, artifact in self.inputs.items()},
            "input_versions": {
                argument: str(version.id) for argument, version in self.input_versions.items()
            },
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
    def id(self) -> ArtifactId:
        """The artifact's content id (its git tree): equal values have equal ids."""
        return self._record.artifact_id

    @property
    def artifact_id(self) -> ArtifactId:
        """The same as ``id``: the content id (``ArtifactVersion.artifact_id`` names it so)."""
        return self._record.artifact_id

    @cached_property
    def artifact_version(self) -> ArtifactVersion | None:
        """The named artifact version this output is (None for an unnamed output).

        For a cached step, the version made by the execution it reused.
        """
        step = self.run.steps.get(self.step_name)
        producers: set[tuple[str | None, str | None]] = {(self.run.name, self.step_name)}
        if step is not None and step.cached_from:
            producers.add((step.cached_from.get("run"), step.cached_from.get("step")))
        names = (self.name, f"{self.run.pipeline_name}.{self.step_name}.{self.name}")
        for name in names:
            for version in reversed(self.run._client.list_artifact_versions(name)):
                producer = (version.producer_run_name, version.producer_step_name)
                if version.artifact_id == self.id and producer in producers:
                    return version
        return None

    @property
    def run_metadata(self) -> dict[str, Any]:
        """Metadata of the named artifact version this output is ({} when it has none)."""
        version = self.artifact_version
        return version.run_metadata if version is not None else {}

    @property
    def materializer(self) -> str:
        """The materializer that wrote it."""
        return self._record.materializer

    @property
    def type_name(self) -> str:
        """The Python type of the value, ``module.QualName``."""
        return self._record.type_name

    @property
    def size(self) -> int:
        """The payload's size in bytes."""
        return self._record.size

    @cached_property
    def _meta(self) -> ArtifactMeta:
        from mlops_lite.store.artifacts import read_artifact_meta

        return read_artifact_meta(self.run._client._store.read_object, self.id)

    @property
    def uses_pickle(self) -> bool:
        """Whether loading it unpickles (runs code).

        Answered from the materializer the artifact's own ``meta`` names, as
        installed here, not from the flag the run's author recorded.
        """
        from mlops_lite.materializers import loading_unpickles

        return loading_unpickles(self._meta.materializer)

    def load(self, *, trust_pickle: bool | None = None) -> Any:
        """The value, decoded by the materializer that saved it.

        A pickled value runs code when loaded, so it loads only from a run that
        is trusted here: recorded by this clone, signed by a key in the
        project's allowed-signers file, ``MLOPS_LITE_TRUST_PICKLE=1``, or
        ``trust_pickle=True`` (``False`` refuses even your own runs). Otherwise
        ``UntrustedPickleError`` says how to trust it.
        """
        from mlops_lite.materializers import get_materializer, loading_unpickles
        from mlops_lite.store.artifacts import read_artifact
        from mlops_lite.store.trust import run_trust, trust_advice

        store = self.run._client._store
        where = f"output {self.name!r} of step {self.step_name!r} (run {self.run.name})"
        if self.run._live is not None:
            # A step of a run still recording: its objects may be in the journal only.
            meta, payload = read_artifact(
                self.run._read_object, self.id, digest=self._record.digest, where=where
            )
        else:
            meta, payload = store.read_artifact(self.id, digest=self._record.digest, where=where)
        materializer = get_materializer(meta.materializer, version=meta.materializer_version)
        if loading_unpickles(meta.materializer):
            trust = run_trust(store, self.run.sha, explicit=trust_pickle)
            if not trust:
                raise UntrustedPickleError(
                    f"output {self.name!r} of step {self.step_name!r} (run {self.run.name}, "
                    f"commit {self.run.sha[:10]}) was saved by {meta.materializer!r}, which "
                    f"unpickles, and loading a pickle runs code. The run is {trust.reason}. "
                    f"{trust_advice(store.root)}"
                )
        return materializer.load_as(payload, meta.type_name)

    def to_dict(self) -> dict[str, Any]:
        """The artifact's description as JSON-ready data (``uses_pickle`` None when absent)."""
        try:
            uses_pickle: bool | None = self.uses_pickle
        except MlopsLiteError:  # its objects are not in this clone: still describe the rest
            uses_pickle = None
        return {
            "artifact_id": self.id,
            "materializer": self.materializer,
            "type": self.type_name,
            "size": self.size,
            "uses_pickle": uses_pickle,
        }

    def __repr__(self) -> str:
        return f"<artifact {self.step_name}.{self.name} {self.type_name} {self.id[:10]}>"
