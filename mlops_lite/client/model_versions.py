"""Models and their versions, as ZenML's client shows them: numbers, stages, links.

Two methods write, as ZenML's do: ``ModelVersion.set_stage`` and
``ModelVersion.log_metadata`` hand the write to ``mlops_lite.operations.models``
(imported when called): the client itself never writes.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from mlops_lite.client.artifact_versions import ArtifactVersion
from mlops_lite.client.registry_base import (
    VersionView,
    missing_version,
    readable_state,
    run_ref_name,
)
from mlops_lite.core.ids import stable_uuid
from mlops_lite.core.registry import RegistryState, VersionState
from mlops_lite.errors import ArtifactVersionNotFoundError, ModelVersionNotFoundError
from mlops_lite.store.registry import read_registry, registry_names

if TYPE_CHECKING:
    from mlops_lite.client.client import Client

__all__ = ["ModelVersion", "RegisteredModel"]


class ModelVersion(VersionView):
    """One version of a model: its number, stage, runs, metadata and linked artifacts."""

    @property
    def name(self) -> str:
        """The version's name: its number (``"3"``) unless it was given one."""
        return self._version.name

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
    def run_names(self) -> list[str]:
        """The runs that worked on this version (``pipeline/run``), the creating run first."""
        return [name for name in map(run_ref_name, self._version.runs) if name]

    @property
    def pipeline_runs(self) -> dict[str, Any]:
        """The runs that worked on this version, by run name (those recorded here)."""
        found = {}
        for run in self._version.runs:
            name = run_ref_name(run)
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
            state = readable_state(self._client, "artifact", name)
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
            raise ModelVersionNotFoundError(missing_version(self._state, version))
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
        "run": run_ref_name(change.run),
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
