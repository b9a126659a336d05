"""The client's look-ups in the model and artifact registries (``Client().get_model_version``...).

``Client().get_artifact_version("dataset")``, ``get_model_version("churn",
"production")`` and friends return the views of ``artifact_versions`` and
``model_versions``; they read the registries' commit chains (``store.registry``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from mlops_lite.client.artifact_versions import ArtifactVersion, RegisteredArtifact
from mlops_lite.client.model_versions import ModelVersion, RegisteredModel
from mlops_lite.client.registry_base import (
    Page,
    missing_version,
    readable_state,
    readable_states,
)
from mlops_lite.core.ids import stable_uuid
from mlops_lite.core.registry import EXCLUSIVE_STAGES, LATEST, RegistryState
from mlops_lite.errors import ArtifactVersionNotFoundError, ModelVersionNotFoundError
from mlops_lite.store.registry import registry_names

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


def _hex(value: object) -> str:
    return str(value).replace("-", "").lower()


# -- Client's look-ups -------------------------------------------------------------------


def get_artifact_version(
    client: Client, name_id_or_prefix: str | uuid.UUID, version: str | int | None = None
) -> ArtifactVersion:
    """An artifact version by name (and version; default: the latest), id or id prefix.

    ``ArtifactVersionNotFoundError`` (a ``KeyError``) when there is none.
    """
    text = str(name_id_or_prefix)
    if not isinstance(name_id_or_prefix, uuid.UUID):
        state = readable_state(client, "artifact", text)
        if state is not None:
            found = state.find(version)
            if found is None or (version is not None and str(version) in EXCLUSIVE_STAGES):
                raise ArtifactVersionNotFoundError(missing_version(state, version))
            return ArtifactVersion(client, state, found)
    prefix = _hex(text)
    matches = [
        (state, v)
        for state in readable_states(client, "artifact")
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
        [s for s in [readable_state(client, "artifact", name)] if s is not None]
        if name is not None
        else list(readable_states(client, "artifact"))
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
    state = readable_state(client, "artifact", text)
    if state is None:
        state = next(
            (
                s
                for s in readable_states(client, "artifact")
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
        for state in readable_states(client, "artifact")
        if name is None or state.name == name
    )


def _model_state(client: Client, model_name_or_id: str | uuid.UUID) -> RegistryState:
    text = str(model_name_or_id)
    by_name = not isinstance(model_name_or_id, uuid.UUID)
    state = readable_state(client, "model", text) if by_name else None
    if state is None:
        by_id = (
            s for s in readable_states(client, "model") if str(stable_uuid("model", s.name)) == text
        )
        state = next(by_id, None)
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
        for state in readable_states(client, "model")
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
        raise ModelVersionNotFoundError(missing_version(state, wanted))
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
