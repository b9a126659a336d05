"""Reading and changing the registries from code: model versions, stages, named artifacts.

What ``Model``'s and ``ModelVersion``'s methods call, and ``save_artifact`` /
``load_artifact``. Inside a running step, a write (a stage change, metadata, a
saved artifact) is handed to the run's driver, which makes it when the step is
recorded: steps may run in other processes, and only the driver moves refs. It
is checked at the call all the same, so a refused stage change raises there.
"""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from mlops_lite.client import ArtifactVersion, Client, ModelVersion
from mlops_lite.core.registry import EXCLUSIVE_STAGES, STAGES
from mlops_lite.core.secrets import scrub_value
from mlops_lite.core.values import is_recordable
from mlops_lite.definition.artifact_config import ArtifactConfig
from mlops_lite.definition.context import PendingWrite, current_step_context
from mlops_lite.definition.model import Model
from mlops_lite.errors import (
    DefinitionError,
    ModelStageError,
    UnrecordableParameterError,
)
from mlops_lite.materializers import as_materializer, materializer_for_value
from mlops_lite.materializers.base import Materializer
from mlops_lite.materializers.path import PathMaterializer
from mlops_lite.store import GitStore
from mlops_lite.store import registry as store_registry

__all__ = [
    "load_artifact",
    "log_artifact_metadata",
    "log_model_metadata",
    "log_version_metadata",
    "model_artifact",
    "model_version",
    "register_artifact",
    "save_artifact",
    "set_model_stage",
    "set_version_stage",
]


def _client(path: str | os.PathLike[str] | None = None) -> Client:
    return Client(path)


def _checked_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    plain = {key: _plain(value) for key, value in metadata.items()}
    for key, value in plain.items():
        if not isinstance(key, str) or not is_recordable(value):
            raise UnrecordableParameterError(
                f"metadata {key!r}: a value of type {type(value).__qualname__} cannot be "
                "recorded; use JSON-like values (numbers, strings, lists, dicts)"
            )
    # Scrubbed where it was logged: a step's process knows the secrets it handed out.
    scrubbed: dict[str, Any] = scrub_value(plain)
    return scrubbed


def _plain(value: Any) -> Any:
    """Numpy scalars (a loss, an accuracy) as the Python numbers they stand for."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


# -- models ------------------------------------------------------------------------------


def model_version(model: Model, *, path: str | os.PathLike[str] | None = None) -> ModelVersion:
    """The registry's version a ``Model`` names (``KeyError`` when there is none).

    A model bound to a run's version finds that version; ``version=None`` outside
    a run means the latest.
    """
    with _client(path) as client:
        wanted: Any = uuid.UUID(model.version_id) if model.version_id else model.version
        return client.get_model_version(model.name, wanted)


def model_artifact(
    model: Model, name: str, version: str | None, kind: str | None
) -> ArtifactVersion | None:
    """The newest version of artifact ``name`` linked to the model's version (None if none)."""
    found = model_version(model)
    getter = found.get_artifact if kind is None else getattr(found, f"get_{kind}_artifact")
    result: ArtifactVersion | None = getter(name, version)
    return result


def _check_stage(found: ModelVersion, stage: str, force: bool) -> None:
    if stage not in STAGES:
        raise ModelStageError(
            f"model {found.model_name!r}: {stage!r} is not a stage; stages are "
            f"{', '.join(STAGES)} ('latest' names the newest version, it cannot be set)"
        )
    holder = found.model.stages.get(stage) if stage in EXCLUSIVE_STAGES else None
    if holder is not None and holder != found.name and not force:
        raise ModelStageError(
            f"model {found.model_name!r}: version {found.name} cannot move to {stage}: version "
            f"{holder} is there; call set_stage({stage!r}, force=True) to move it anyway "
            f"(version {holder} then becomes archived)"
        )


def set_version_stage(found: ModelVersion, stage: str, *, force: bool) -> None:
    """Move a model version to ``stage`` (deferred to the driver inside a step)."""
    _check_stage(found, stage, force)
    context = current_step_context()
    if context is not None:
        context.pending_writes.append(
            PendingWrite(
                "set_stage",
                {
                    "model": found.model_name,
                    "version_id": found.id.hex,
                    "stage": stage,
                    "force": force,
                },
            )
        )
        return
    with GitStore.open(found.model._client.root) as store:
        store_registry.set_stage(store, found.model_name, found.id.hex, stage, force=force)


def set_model_stage(model: Model, stage: str, *, force: bool) -> None:
    """``Model.set_stage``: move the version the model names to ``stage``."""
    set_version_stage(model_version(model), stage, force=force)


def log_version_metadata(found: ModelVersion, metadata: Mapping[str, Any]) -> None:
    """Merge metadata into a model version (deferred to the driver inside a step)."""
    plain = _checked_metadata(metadata)
    context = current_step_context()
    if context is not None:
        context.pending_writes.append(
            PendingWrite(
                "model_metadata",
                {"model": found.model_name, "version_id": found.id.hex, "metadata": plain},
            )
        )
        return
    with GitStore.open(found.model._client.root) as store:
        store_registry.log_version_metadata(store, "model", found.model_name, found.id.hex, plain)


def log_model_metadata(
    model: Model, metadata: Mapping[str, Any], *, path: str | os.PathLike[str] | None = None
) -> None:
    """``Model.log_metadata``: merge metadata into the version the model names."""
    log_version_metadata(model_version(model, path=path), metadata)


# -- named artifacts ----------------------------------------------------------------------


def log_artifact_metadata(
    metadata: Mapping[str, Any],
    *,
    artifact_name: str | None = None,
    artifact_version: str | None = None,
    artifact_version_id: str | uuid.UUID | None = None,
    infer_artifact: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Merge metadata into an artifact version; inside a step, possibly one of its own outputs.

    ``infer_artifact`` (or an ``artifact_name`` that is one of the running step's
    outputs) targets the version the step's output becomes when the step is recorded.
    """
    plain = _checked_metadata(metadata)
    context = current_step_context()
    own_output = None
    if context is not None and artifact_version_id is None and artifact_version is None:
        own_output = _own_output(context, artifact_name, required=infer_artifact)
    if own_output is not None:
        assert context is not None
        context.pending_writes.append(
            PendingWrite("artifact_metadata", {"output": own_output, "metadata": plain})
        )
        return
    if infer_artifact:
        raise DefinitionError(
            "log_metadata(infer_artifact=True) works inside a step, for one of its outputs"
        )
    with GitStore.open(path) as store, Client(store=store) as client:
        if artifact_version_id is not None:
            found = client.get_artifact_version(uuid.UUID(str(artifact_version_id)))
        elif artifact_name is not None:
            found = client.get_artifact_version(artifact_name, artifact_version)
        else:
            raise DefinitionError(
                "log_metadata(...) for an artifact needs artifact_version_id=..., "
                "artifact_name=... (and artifact_version=...), or infer_artifact=True in a step"
            )
        arguments = {"artifact": found.name, "version_id": found.id.hex, "metadata": plain}
        if context is not None:
            context.pending_writes.append(PendingWrite("artifact_metadata", arguments))
            return
        store_registry.log_version_metadata(store, "artifact", found.name, found.id.hex, plain)


def _own_output(context: Any, artifact_name: str | None, *, required: bool) -> str | None:
    """Which output of the running step ``artifact_name`` means (the only one when None)."""
    names: dict[str, str] = context.artifact_names
    output: str
    if artifact_name is None:
        if not required:
            return None
        if len(context.output_names) != 1:
            raise DefinitionError(
                f"step {context.step_name!r} has outputs {list(context.output_names)}: "
                "give log_metadata(artifact_name=...) with infer_artifact=True"
            )
        output = context.output_names[0]
    else:
        by_artifact = {artifact: output for output, artifact in names.items()}
        output = by_artifact.get(artifact_name) or (
            artifact_name if artifact_name in context.output_names else ""
        )
        if not output:
            if required:
                raise DefinitionError(
                    f"step {context.step_name!r} has no output {artifact_name!r}; its outputs "
                    f"are {', '.join(context.output_names) or 'none'}"
                )
            return None
    if output not in names:
        raise DefinitionError(
            f"output {output!r} of step {context.step_name!r} is not a named artifact, so it "
            "has no version to hold metadata: name it with Annotated[T, 'name'] or ArtifactConfig"
        )
    return output


def save_artifact(
    data: Any,
    name: str,
    version: str | int | None = None,
    tags: Sequence[str] | None = None,
    artifact_type: str | None = None,
    is_model_artifact: bool = False,
    is_deployment_artifact: bool = False,
    user_metadata: Mapping[str, Any] | None = None,
    materializer: type[Any] | Materializer | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> ArtifactVersion | None:
    """Save ``data`` as a new version of artifact ``name``; return that version.

    Inside a running step, the version is created (and linked to the step's model
    version) when the step is recorded, and None is returned.
    """
    config = ArtifactConfig(
        name=name,
        version=version,
        tags=list(tags or []),
        run_metadata=_checked_metadata(user_metadata or {}),
        artifact_type=artifact_type,
        is_model_artifact=is_model_artifact,
        is_deployment_artifact=is_deployment_artifact,
    )
    chosen = as_materializer(materializer) if materializer is not None else None
    if chosen is not None and not isinstance(chosen, Materializer):
        raise DefinitionError(f"save_artifact(materializer={materializer!r}) is no materializer")
    writer = chosen or materializer_for_value(data, step_name="save_artifact", output_name=name)
    payload: dict[str, Any] = {
        "payload": bytes(writer.save(data)),
        "materializer": writer.name,
        "materializer_version": writer.version,
        "type_name": f"{type(data).__module__}.{type(data).__qualname__}",
        "uses_pickle": writer.uses_pickle,
        "stores_files": writer.stores_files,
    }
    arguments: dict[str, Any] = {
        "name": name,
        "version": None if version is None else str(version),
        "tags": list(config.tags),
        "artifact_type": config.artifact_type or "",
        "link_kind": config.link_kind,
        "metadata": dict(config.run_metadata),
        "payload": payload,
    }
    context = current_step_context()
    if context is not None:
        context.pending_writes.append(PendingWrite("save_artifact", arguments))
        return None
    from mlops_lite.execution.task import MaterializedOutput

    with GitStore.open(path) as store, Client(store=store) as client:
        output, objects = store_registry.build_output(MaterializedOutput(**payload))
        _, version_id = store_registry.save_artifact_version(
            store,
            name,
            output,
            artifact_tree=output.artifact_id,
            objects=objects,
            version=arguments["version"],
            tags=arguments["tags"],
            artifact_type=arguments["artifact_type"]
            or ("ModelArtifact" if config.link_kind == "model" else "DataArtifact"),
            metadata=arguments["metadata"],
        )
        return client.get_artifact_version(uuid.UUID(version_id))


def register_artifact(
    folder_or_file_uri: str | os.PathLike[str],
    name: str,
    version: str | int | None = None,
    artifact_type: str | None = None,
    tags: Sequence[str] | None = None,
    has_custom_name: bool = True,
    is_model_artifact: bool = False,
    is_deployment_artifact: bool = False,
    artifact_metadata: Mapping[str, Any] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> ArtifactVersion | None:
    """Keep a local file or folder as a new version of artifact ``name``.

    Unlike ZenML, which registers data already in its artifact store, the files
    are copied into git (as a tree of the same files); ``load()`` gives back the
    ``Path`` of a local copy. ``has_custom_name`` is accepted for compatibility.
    """
    return save_artifact(
        pathlib.Path(folder_or_file_uri),
        name,
        version=version,
        tags=tags,
        artifact_type=artifact_type,
        is_model_artifact=is_model_artifact,
        is_deployment_artifact=is_deployment_artifact,
        user_metadata=artifact_metadata,
        materializer=PathMaterializer,
        path=path,
    )


def load_artifact(
    name_or_id: str | uuid.UUID,
    version: str | int | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The value of an artifact version: by name (and version; default the latest) or id."""
    with _client(path) as client:
        return client.get_artifact_version(name_or_id, version).load()
