"""The model and artifact registries as ZenML's client shows them: versions, stages, links.

``Client().get_artifact_version("dataset")``, ``get_model_version("churn",
"production")`` and friends return the views defined here. They read the
registries' commit chains (``store.registry``). Two methods write, as ZenML's
do: ``ModelVersion.set_stage`` and ``ModelVersion.log_metadata`` hand the write
to ``mlops_lite.operations.models`` (imported when called): the client itself
never writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from mlops_lite.core.ids import ArtifactId, stable_uuid
from mlops_lite.core.references import ArtifactSelector
from mlops_lite.core.registry import EXCLUSIVE_STAGES, LATEST, RegistryState, VersionState
from mlops_lite.errors import (
    ArtifactVersionNotFoundError,
    MlopsLiteError,
    ModelVersionNotFoundError,
    RecordError,
    UntrustedPickleError,
)
from mlops_lite.materializers import get_materializer, loading_unpickles
from mlops_lite.store.layout import read_run_commit, read_step_entries, run_ref
from mlops_lite.store.objects import parse_tree
from mlops_lite.store.registry import introducing_commit, read_registry, registry_names
from mlops_lite.store.trust import Trust, run_trust, trust_advice

if TYPE_CHECKING:
    from mlops_lite.client.client import Client

__all__ = [
    "ArtifactVersion",
    "ModelVersion",
    "Page",
    "RegisteredArtifact",
    "RegisteredModel",
    "get_artifact",
    "get_artifact_version",
    "get_model",
    "get_model_version",
    "list_artifact_versions",
    "list_artifacts",
    "list_model_versions",
    "list_models",
]

T = TypeVar("T")


class Page(list[T], Generic[T]):
    """A list of results, with ZenML's page attributes (everything is on one page)."""

    @property
    def items(self) -> list[T]:
        """The results."""
        return list(self)

    @property
    def total(self) -> int:
        """How many results there are."""
        return len(self)

    @property
    def size(self) -> int:
        """How many results this page holds (all of them)."""
        return len(self)


def _hex(value: Any) -> str:
    return str(value).replace("-", "").lower()


def _run_ref_name(run: dict[str, str]) -> str | None:
    return f"{run['pipeline']}/{run['run']}" if run.get("pipeline") and run.get("run") else None


class ArtifactVersion:
    """One version of a named artifact: its value, where it came from, its metadata and links."""

    def __init__(self, client: Client, state: RegistryState, version: VersionState) -> None:
        self._client = client
        self._state = state
        self._version = version

    @property
    def id(self) -> uuid.UUID:
        """The version's id (unique in every clone)."""
        return uuid.UUID(self._version.version_id)

    @property
    def name(self) -> str:
        """The artifact's name."""
        return self._state.name

    @property
    def version(self) -> str:
        """The version's name: its number (``"3"``), or the name given in ``ArtifactConfig``."""
        return self._version.name

    @property
    def number(self) -> int:
        """The version's number."""
        return self._version.number

    @property
    def _event(self) -> Any:
        return self._version.event

    @property
    def artifact_id(self) -> ArtifactId:
        """The content id (git tree): equal values have equal ids, in every version and run."""
        return ArtifactId(self._event.artifact_id)

    @property
    def type(self) -> str:
        """Its ``ArtifactType`` value (``DataArtifact``, ``ModelArtifact``, ...)."""
        return str(self._event.artifact_type or "DataArtifact")

    @property
    def materializer(self) -> str:
        """The materializer that wrote it."""
        return str(self._event.materializer)

    @property
    def data_type(self) -> str:
        """The Python type of the value, ``module.QualName``."""
        return str(self._event.type_name)

    @property
    def size(self) -> int:
        """The payload's size in bytes."""
        return int(self._event.size)

    @property
    def uses_pickle(self) -> bool:
        """Whether loading it unpickles (runs code)."""
        return bool(self._event.uses_pickle)

    @property
    def tags(self) -> list[str]:
        """Its tags."""
        return list(self._version.tags)

    @property
    def run_metadata(self) -> dict[str, Any]:
        """Metadata logged on this version (``ArtifactConfig.run_metadata``, ``log_metadata``)."""
        return dict(self._version.metadata)

    @property
    def created(self) -> float:
        """When it was created (seconds since the epoch)."""
        return self._version.created

    @property
    def author(self) -> str:
        """The e-mail of whoever created it."""
        return self._version.author

    @property
    def producer_pipeline_name(self) -> str | None:
        """The pipeline whose run produced it (None for ``save_artifact`` outside a run)."""
        return self._version.run.get("pipeline")

    @property
    def producer_run_name(self) -> str | None:
        """The run that produced it."""
        return self._version.run.get("run")

    @property
    def producer_step_name(self) -> str | None:
        """The step (invocation) that produced it."""
        return self._version.run.get("step")

    @property
    def producer_pipeline_run_id(self) -> uuid.UUID | None:
        """The producing run's id (``Run.id``)."""
        run = self._version.run
        if not (run.get("pipeline") and run.get("run")):
            return None
        return stable_uuid("run", run["pipeline"], run["run"])

    @property
    def producer_step_run_id(self) -> uuid.UUID | None:
        """The producing step's id (``StepRun.id``)."""
        run = self._version.run
        if not (run.get("pipeline") and run.get("run") and run.get("step")):
            return None
        return stable_uuid("step", run["pipeline"], run["run"], run["step"])

    @property
    def model_links(self) -> list[dict[str, str]]:
        """The model versions it is linked to: ``{"model", "version_id", "kind"}``."""
        return [dict(link) for link in self._version.links]

    @property
    def artifact(self) -> RegisteredArtifact:
        """The named artifact this is a version of."""
        return RegisteredArtifact(self._client, self._state)

    def trust(self, *, explicit: bool | None = None) -> Trust:
        """Whether this version's pickles may be loaded here (``store.trust``'s rules).

        A version made by a run is as trusted as that run, once the run is seen to
        hold exactly this artifact; one saved outside a run, as the registry commit
        that added it (trusted when this clone wrote it).
        """
        store = self._client._store
        run = self._version.run
        if run.get("pipeline") and run.get("run"):
            sha = store.refs.read(run_ref(run["pipeline"], run["run"]))
            if sha is None or not self._made_by(sha):
                trust = run_trust(store, "", explicit=explicit, signatures=False)
                if trust:
                    return trust
                return Trust(False, "made by a run that is not in this clone or does not hold it")
            return run_trust(store, sha, explicit=explicit)
        commit_id = introducing_commit(store, self.name, self._version.version_id)
        return run_trust(store, commit_id or "", explicit=explicit)

    def _made_by(self, run_sha: str) -> bool:
        """Whether the run commit holds this very artifact as the output the version names."""
        store = self._client._store
        run = self._version.run
        try:
            steps = read_run_commit(store.read_object, run_sha).steps
            entries = read_step_entries(store.read_object, steps[run.get("step", "")])
            outputs = entries.get("outputs")
            if outputs is None:
                return False
            found = parse_tree(store.read_object(outputs[1])).get(run.get("output", ""))
        except (MlopsLiteError, KeyError):
            return False
        return found is not None and found[1] == self.artifact_id

    def load(self, *, trust_pickle: bool | None = None) -> Any:
        """The value, decoded by the materializer that saved it.

        A pickled value runs code when loaded, so it loads only when its version is
        trusted here (see ``trust``), or with ``trust_pickle=True``.
        """
        store = self._client._store
        meta, payload = store.read_artifact(self.artifact_id)
        materializer = get_materializer(meta.materializer, version=meta.materializer_version)
        if loading_unpickles(meta.materializer):
            trust = self.trust(explicit=trust_pickle)
            if not trust:
                raise UntrustedPickleError(
                    f"artifact {self.name!r} version {self.version} (by {self.author or 'unknown'})"
                    f" was saved by {meta.materializer!r}, which unpickles, and loading a pickle "
                    f"runs code. It is {trust.reason}. {trust_advice(store.root)}"
                )
        return materializer.load_as(payload, meta.type_name)

    def _artifact_selector_(self) -> ArtifactSelector:
        """Passed to a step in a pipeline body, this exact version is the step's input."""
        return ArtifactSelector(artifact_name=self.name, version_id=self._version.version_id)

    def to_dict(self) -> dict[str, Any]:
        """The version as JSON-ready data."""
        return {
            "id": str(self.id),
            "name": self.name,
            "version": self.version,
            "number": self.number,
            "artifact_id": self.artifact_id,
            "type": self.type,
            "materializer": self.materializer,
            "data_type": self.data_type,
            "size": self.size,
            "tags": self.tags,
            "run_metadata": self.run_metadata,
            "created": self.created,
            "author": self.author,
            "producer": dict(self._version.run),
            "model_links": self.model_links,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactVersion) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<artifact version {self.name}:{self.version} {self.artifact_id[:10]}>"


class RegisteredArtifact:
    """A named artifact and its versions."""

    def __init__(self, client: Client, state: RegistryState) -> None:
        self._client = client
        self._state = state

    @property
    def name(self) -> str:
        """The artifact's name."""
        return self._state.name

    @property
    def id(self) -> uuid.UUID:
        """An id derived from the name (the same in every clone)."""
        return stable_uuid("artifact", self.name)

    @property
    def versions(self) -> dict[str, ArtifactVersion]:
        """Every version by version name, oldest first."""
        return {
            version.name: ArtifactVersion(self._client, self._state, version)
            for version in self._state.ordered()
        }

    @property
    def latest_version(self) -> ArtifactVersion | None:
        """The newest version."""
        latest = self._state.latest()
        return None if latest is None else ArtifactVersion(self._client, self._state, latest)

    @property
    def latest_version_name(self) -> str | None:
        """The newest version's name."""
        latest = self._state.latest()
        return None if latest is None else latest.name

    @property
    def latest_version_id(self) -> uuid.UUID | None:
        """The newest version's id."""
        latest = self._state.latest()
        return None if latest is None else uuid.UUID(latest.version_id)

    @property
    def tags(self) -> list[str]:
        """The tags of all its versions."""
        return list(dict.fromkeys(tag for v in self._state.ordered() for tag in v.tags))

    def to_dict(self) -> dict[str, Any]:
        """The artifact as JSON-ready data."""
        latest = self._state.latest()
        return {
            "name": self.name,
            "versions": len(self._state.versions),
            "latest_version": latest.name if latest else None,
            "latest_created": latest.created if latest else None,
            "tags": self.tags,
        }

    def __repr__(self) -> str:
        return f"<artifact {self.name} ({len(self._state.versions)} versions)>"


class ModelVersion:
    """One version of a model: its number, stage, runs, metadata and linked artifacts."""

    def __init__(self, client: Client, state: RegistryState, version: VersionState) -> None:
        self._client = client
        self._state = state
        self._version = version

    @property
    def id(self) -> uuid.UUID:
        """The version's id (unique in every clone)."""
        return uuid.UUID(self._version.version_id)

    @property
    def name(self) -> str:
        """The version's name: its number (``"3"``) unless it was given one."""
        return self._version.name

    @property
    def number(self) -> int:
        """The version's number."""
        return self._version.number

    @property
    def stage(self) -> str | None:
        """``staging``, ``production``, ``archived``, or None."""
        return None if self._version.stage == "none" else self._version.stage

    @property
    def model(self) -> RegisteredModel:
        """The model this is a version of."""
        return RegisteredModel(self._client, self._state)

    @property
    def model_name(self) -> str:
        """The model's name."""
        return self._state.name

    @property
    def created(self) -> float:
        """When it was created (seconds since the epoch)."""
        return self._version.created

    @property
    def author(self) -> str:
        """The e-mail of whoever created it."""
        return self._version.author

    @property
    def run_metadata(self) -> dict[str, Any]:
        """Metadata logged on this version."""
        return dict(self._version.metadata)

    @property
    def run_names(self) -> list[str]:
        """The runs that worked on this version (``pipeline/run``), the creating run first."""
        return [name for name in map(_run_ref_name, self._version.runs) if name]

    @property
    def pipeline_runs(self) -> dict[str, Any]:
        """The runs that worked on this version, by run name (those recorded here)."""
        found = {}
        for run in self._version.runs:
            name = _run_ref_name(run)
            if name is None:
                continue
            try:
                found[run["run"]] = self._client.get_pipeline_run(name)
            except LookupError:
                continue
        return found

    @property
    def stage_history(self) -> list[dict[str, Any]]:
        """Every stage change of this version: stage, who, when, from which run, applied."""
        return [
            _change_dict(self._state, change)
            for change in self._state.history
            if change.version_id == self._version.version_id
            or change.displaced == self._version.version_id
        ]

    def _linked(self, kind: str | None) -> dict[str, dict[str, ArtifactVersion]]:
        found: dict[str, dict[str, ArtifactVersion]] = {}
        for name in registry_names(self._client._store, "artifact"):
            state = _readable(self._client, "artifact", name)
            if state is None:
                continue
            versions = _linked_versions(state, self._state.name, self._version.version_id, kind)
            if versions:
                found[name] = {v.name: ArtifactVersion(self._client, state, v) for v in versions}
        return found

    @property
    def model_artifacts(self) -> dict[str, dict[str, ArtifactVersion]]:
        """Artifacts linked as model artifacts: ``{name: {version: ArtifactVersion}}``."""
        return self._linked("model")

    @property
    def data_artifacts(self) -> dict[str, dict[str, ArtifactVersion]]:
        """Artifacts linked as data artifacts."""
        return self._linked("data")

    @property
    def deployment_artifacts(self) -> dict[str, dict[str, ArtifactVersion]]:
        """Artifacts linked as deployment artifacts."""
        return self._linked("deployment")

    def get_artifact(self, name: str, version: str | None = None) -> ArtifactVersion | None:
        """The newest version of artifact ``name`` linked to this model version (or ``version``).

        None when no such artifact is linked, as in ZenML.
        """
        return self._get(name, version, None)

    def get_model_artifact(self, name: str, version: str | None = None) -> ArtifactVersion | None:
        """Like ``get_artifact``, among model artifacts."""
        return self._get(name, version, "model")

    def get_data_artifact(self, name: str, version: str | None = None) -> ArtifactVersion | None:
        """Like ``get_artifact``, among data artifacts."""
        return self._get(name, version, "data")

    def get_deployment_artifact(
        self, name: str, version: str | None = None
    ) -> ArtifactVersion | None:
        """Like ``get_artifact``, among deployment artifacts."""
        return self._get(name, version, "deployment")

    def load_artifact(self, name: str, version: str | None = None) -> Any:
        """The value of ``get_artifact(name, version)``; ``KeyError`` when none is linked."""
        found = self._get(name, version, None)
        if found is None:
            raise ArtifactVersionNotFoundError(self._missing(name, version, None))
        return found.load()

    def _get(self, name: str, version: str | None, kind: str | None) -> ArtifactVersion | None:
        state = read_registry(self._client._store, "artifact", name)
        if state is None:
            return None
        versions = _linked_versions(state, self._state.name, self._version.version_id, kind)
        if version is not None:
            versions = [v for v in versions if version in (v.name, str(v.number))]
        return ArtifactVersion(self._client, state, versions[-1]) if versions else None

    def _missing(self, name: str, version: str | None, kind: str | None) -> str:
        what = f"{kind} artifact" if kind else "artifact"
        which = f" version {version}" if version is not None else ""
        return (
            f"model {self._state.name!r} version {self.name} has no {what} {name!r}{which} "
            "linked: runs with this model version link the artifacts they produce"
        )

    def set_stage(self, stage: str, force: bool = False) -> None:
        """Move this version to ``stage``; with ``force``, archive the version holding it."""
        from mlops_lite.operations import models

        models.set_version_stage(self, str(stage), force=force)

    def log_metadata(self, metadata: dict[str, Any]) -> None:
        """Merge ``metadata`` into this version's ``run_metadata``."""
        from mlops_lite.operations import models

        models.log_version_metadata(self, metadata)

    def to_dict(self) -> dict[str, Any]:
        """The version as JSON-ready data."""
        return {
            "id": str(self.id),
            "model": self.model_name,
            "name": self.name,
            "number": self.number,
            "stage": self.stage,
            "created": self.created,
            "author": self.author,
            "runs": self.run_names,
            "run_metadata": self.run_metadata,
            "stage_history": self.stage_history,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelVersion) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        stage = f" [{self.stage}]" if self.stage else ""
        return f"<model version {self.model_name}:{self.name}{stage}>"


class RegisteredModel:
    """A model: its card, tags, versions and stage history."""

    def __init__(self, client: Client, state: RegistryState) -> None:
        self._client = client
        self._state = state

    @property
    def name(self) -> str:
        """The model's name."""
        return self._state.name

    @property
    def id(self) -> uuid.UUID:
        """An id derived from the name (the same in every clone)."""
        return stable_uuid("model", self.name)

    def __getattr__(self, name: str) -> Any:
        if name in ("license", "description", "audience", "use_cases", "limitations",
                    "trade_offs", "ethics"):  # fmt: skip
            return self._state.card.get(name)
        raise AttributeError(name)

    @property
    def tags(self) -> list[str]:
        """The model's tags."""
        return list(self._state.tags)

    @property
    def versions(self) -> list[ModelVersion]:
        """Every version, by number."""
        return [ModelVersion(self._client, self._state, v) for v in self._state.ordered()]

    @property
    def latest_version_name(self) -> str | None:
        """The newest version's name."""
        latest = self._state.latest()
        return None if latest is None else latest.name

    @property
    def latest_version_id(self) -> uuid.UUID | None:
        """The newest version's id."""
        latest = self._state.latest()
        return None if latest is None else uuid.UUID(latest.version_id)

    @property
    def stages(self) -> dict[str, str]:
        """Which version (by name) holds ``staging`` and ``production``."""
        return {
            stage: self._state.versions[version_id].name
            for stage, version_id in self._state.stages.items()
        }

    @property
    def stage_history(self) -> list[dict[str, Any]]:
        """Every stage change: stage, version, who, when, from which run, applied or not."""
        return [_change_dict(self._state, change) for change in self._state.history]

    def get_version(self, version: str | int | None = None) -> ModelVersion:
        """A version by name, number, stage or id (default: the latest)."""
        found = self._state.find(version)
        if found is None:
            raise ModelVersionNotFoundError(_no_version(self._state, version))
        return ModelVersion(self._client, self._state, found)

    def to_dict(self) -> dict[str, Any]:
        """The model as JSON-ready data."""
        latest = self._state.latest()
        return {
            "name": self.name,
            "versions": len(self._state.versions),
            "latest_version": latest.name if latest else None,
            "stages": self.stages,
            **dict(self._state.card),
            "tags": self.tags,
        }

    def __repr__(self) -> str:
        return f"<model {self.name} ({len(self._state.versions)} versions)>"


def _change_dict(state: RegistryState, change: Any) -> dict[str, Any]:
    displaced = state.versions.get(change.displaced) if change.displaced else None
    return {
        "stage": change.stage,
        "version": state.versions[change.version_id].name,
        "author": change.author,
        "time": change.time,
        "run": _run_ref_name(change.run),
        "force": change.force,
        "applied": change.applied,
        "archived": displaced.name if displaced else None,
        "reason": change.reason or None,
    }


def _linked_versions(
    state: RegistryState, model: str, version_id: str, kind: str | None
) -> list[VersionState]:
    return [
        version
        for version in state.ordered()
        if any(
            link["model"] == model
            and link["version_id"] == version_id
            and (kind is None or link["kind"] == kind)
            for link in version.links
        )
    ]


def _readable(client: Client, kind: Any, name: str) -> RegistryState | None:
    """The registry's state, or None when it is unreadable (one bad registry hides no other)."""
    try:
        return read_registry(client._store, kind, name)
    except RecordError:
        return None


def _states(client: Client, kind: Any) -> Iterable[RegistryState]:
    for name in registry_names(client._store, kind):
        state = _readable(client, kind, name)
        if state is not None:
            yield state


def _no_version(state: RegistryState, version: Any) -> str:
    known = ", ".join(v.name for v in state.ordered()[-10:]) or "none"
    stages = ", ".join(f"{s}: {state.versions[v].name}" for s, v in state.stages.items())
    if version is not None and str(version) in EXCLUSIVE_STAGES:
        return (
            f"no version of {state.registry} {state.name!r} is in stage {version} "
            f"(stages: {stages or 'none held'}); promote one with set_stage({str(version)!r})"
        )
    return f"{state.registry} {state.name!r} has no version {version} (versions: {known})"


# -- Client's look-ups -------------------------------------------------------------------


def get_artifact_version(
    client: Client, name_id_or_prefix: str | uuid.UUID, version: str | int | None = None
) -> ArtifactVersion:
    """An artifact version by name (and version; default: the latest), id or id prefix.

    ``ArtifactVersionNotFoundError`` (a ``KeyError``) when there is none.
    """
    text = str(name_id_or_prefix)
    if not isinstance(name_id_or_prefix, uuid.UUID):
        state = _readable(client, "artifact", text)
        if state is not None:
            found = state.find(version)
            if found is None or (version is not None and str(version) in EXCLUSIVE_STAGES):
                raise ArtifactVersionNotFoundError(_no_version(state, version))
            return ArtifactVersion(client, state, found)
    prefix = _hex(text)
    matches = [
        (state, v)
        for state in _states(client, "artifact")
        for v in state.versions.values()
        if len(prefix) >= 4 and v.version_id.startswith(prefix)
    ]
    if len(matches) == 1:
        return ArtifactVersion(client, *matches[0])
    if len(matches) > 1:
        raise ArtifactVersionNotFoundError(
            f"{text!r} matches {len(matches)} artifact versions; give more of the id"
        )
    names = ", ".join(registry_names(client._store, "artifact")) or "none yet"
    raise ArtifactVersionNotFoundError(
        f"no artifact named {text!r} and no artifact version with id {text!r} "
        f"(artifacts: {names}); name outputs with Annotated[T, 'name'] to version them"
    )


def list_artifact_versions(
    client: Client,
    name: str | None = None,
    *,
    version: str | None = None,
    tag: str | None = None,
) -> Page[ArtifactVersion]:
    """Artifact versions (of one artifact, with a version name, a tag), oldest first."""
    states = (
        [s for s in [_readable(client, "artifact", name)] if s is not None]
        if name is not None
        else list(_states(client, "artifact"))
    )
    return Page(
        ArtifactVersion(client, state, v)
        for state in states
        for v in state.ordered()
        if (version is None or v.name == str(version)) and (tag is None or tag in v.tags)
    )


def get_artifact(client: Client, name_id_or_prefix: str | uuid.UUID) -> RegisteredArtifact:
    """A named artifact, by name or id; ``ArtifactVersionNotFoundError`` when there is none."""
    text = str(name_id_or_prefix)
    state = _readable(client, "artifact", text)
    if state is None:
        state = next(
            (
                s
                for s in _states(client, "artifact")
                if str(stable_uuid("artifact", s.name)) == text
            ),
            None,
        )
    if state is None:
        names = ", ".join(registry_names(client._store, "artifact")) or "none yet"
        raise ArtifactVersionNotFoundError(f"no artifact named {text!r} (artifacts: {names})")
    return RegisteredArtifact(client, state)


def list_artifacts(client: Client, name: str | None = None) -> Page[RegisteredArtifact]:
    """Every named artifact (or the one called ``name``), by name."""
    return Page(
        RegisteredArtifact(client, state)
        for state in _states(client, "artifact")
        if name is None or state.name == name
    )


def _model_state(client: Client, model_name_or_id: str | uuid.UUID) -> RegistryState:
    text = str(model_name_or_id)
    state = None if isinstance(model_name_or_id, uuid.UUID) else _readable(client, "model", text)
    if state is None:
        state = next(
            (s for s in _states(client, "model") if str(stable_uuid("model", s.name)) == text),
            None,
        )
    if state is None:
        names = ", ".join(registry_names(client._store, "model")) or "none yet"
        raise ModelVersionNotFoundError(
            f"no model named {text!r} (models: {names}); a run with @pipeline(model=Model(...)) "
            "creates it"
        )
    return state


def get_model(client: Client, model_name_or_id: str | uuid.UUID) -> RegisteredModel:
    """A model by name or id; ``ModelVersionNotFoundError`` (a ``KeyError``) when there is none."""
    return RegisteredModel(client, _model_state(client, model_name_or_id))


def list_models(client: Client, name: str | None = None) -> Page[RegisteredModel]:
    """Every model (or the one called ``name``), by name."""
    return Page(
        RegisteredModel(client, state)
        for state in _states(client, "model")
        if name is None or state.name == name
    )


def get_model_version(
    client: Client,
    model_name_or_id: str | uuid.UUID,
    model_version_name_or_number_or_id: str | int | uuid.UUID | None = None,
) -> ModelVersion:
    """A model version by name, number, stage (``production``, ``latest``) or id.

    The latest when no version is given; ``ModelVersionNotFoundError`` (a ``KeyError``,
    as in ZenML) when the model or the version does not exist.
    """
    state = _model_state(client, model_name_or_id)
    wanted = model_version_name_or_number_or_id
    if isinstance(wanted, uuid.UUID):
        wanted = wanted.hex
    found = state.find(None if wanted == LATEST else wanted)
    if found is None:
        raise ModelVersionNotFoundError(_no_version(state, wanted))
    return ModelVersion(client, state, found)


def list_model_versions(
    client: Client, model_name_or_id: str | uuid.UUID, *, stage: str | None = None
) -> Page[ModelVersion]:
    """A model's versions (in one stage), by number."""
    state = _model_state(client, model_name_or_id)
    return Page(
        ModelVersion(client, state, v)
        for v in state.ordered()
        if stage is None or v.stage == str(stage)
    )
