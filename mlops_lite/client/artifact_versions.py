"""Named artifacts and their versions, as ZenML's client shows them."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from mlops_lite.client.registry_base import VersionView
from mlops_lite.core.ids import ArtifactId, stable_uuid
from mlops_lite.core.references import ArtifactSelector
from mlops_lite.core.registry import RegistryState
from mlops_lite.errors import MlopsLiteError, UntrustedPickleError
from mlops_lite.materializers import get_materializer, loading_unpickles
from mlops_lite.store.layout import read_run_commit, read_step_entries, run_ref
from mlops_lite.store.objects import TREE, parse_tree
from mlops_lite.store.registry import introducing_commit
from mlops_lite.store.trust import Trust, run_trust, trust_advice

if TYPE_CHECKING:
    from mlops_lite.client.client import Client

__all__ = ["ArtifactVersion", "RegisteredArtifact"]


class ArtifactVersion(VersionView):
    """One version of a named artifact: its value, where it came from, its metadata and links."""

    @property
    def name(self) -> str:
        """The artifact's name."""
        return self._state.name

    @property
    def version(self) -> str:
        """The version's name: its number (``"3"``), or the name given in ``ArtifactConfig``."""
        return self._version.name

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
    def producer_output_name(self) -> str | None:
        """The output of the producing step it is."""
        return self._version.run.get("output")

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

        Trusted when the run that made it is trusted and holds exactly this
        artifact (a registry event cannot borrow a trusted run's name), or when
        this clone wrote the registry commit that added it: its own runs' outputs
        (also while the run is still recording) and what it saved outside a run.
        """
        store = self._client._store
        run = self._version.run
        if run.get("pipeline") and run.get("run"):
            ref = run_ref(run["pipeline"], run["run"])
            sha = store.refs.read(ref)
            if sha is None:  # folded into an archive: the index knows its sha
                rows = self._client._runs_index().find(ref)
                sha = rows[0].sha if len(rows) == 1 else None
            if sha is not None and self._made_by(sha):
                trust = run_trust(store, sha, explicit=explicit)
                if trust or explicit is not None:
                    return trust
        commit_id = introducing_commit(store, self.name, self._version.version_id)
        trust = run_trust(store, commit_id or "", explicit=explicit, signatures=False)
        if trust or explicit is not None:
            return trust
        return Trust(
            False,
            "neither made by a run trusted here that holds it, nor saved by this clone",
        )

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
            found = parse_tree(store.read_object(outputs[1], TREE)).get(run.get("output", ""))
        except (MlopsLiteError, KeyError):
            return False
        return found is not None and found[1] == self.artifact_id

    def load(self, *, trust_pickle: bool | None = None) -> Any:
        """The value, decoded by the materializer that saved it.

        A pickled value runs code when loaded, so it loads only when its version is
        trusted here (see ``trust``), or with ``trust_pickle=True``.
        """
        store = self._client._store
        meta, payload = store.read_artifact(
            self.artifact_id,
            digest=self._event.digest,
            where=f"artifact {self.name!r} version {self.version}",
        )
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
