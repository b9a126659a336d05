"""``log_metadata()``: metadata for a step, a run, an artifact version or a model version.

As in ZenML, the arguments say where it goes:

- nothing: the running step, or (in a ``@pipeline`` body) the run;
- ``run_id_name_or_prefix`` (and ``step_name``): a recorded run or one of its steps;
- ``artifact_version_id``, ``artifact_name`` (and ``artifact_version``), or
  ``infer_artifact=True`` in a step (its output, or the one named ``artifact_name``);
- ``model_version_id``, ``model_name`` (and ``model_version``), or ``infer_model=True``
  in a step (the model version the step works on).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import Any

from mlops_lite.core.values import is_recordable
from mlops_lite.definition.context import current_step_context
from mlops_lite.definition.tracing import current_trace
from mlops_lite.errors import DefinitionError, UnrecordableParameterError

__all__ = ["log_metadata"]


def _plain(value: Any) -> Any:
    """Numpy scalars (a loss, an accuracy) as the Python numbers they stand for."""
    if (
        type(value).__module__ == "numpy"
        and hasattr(value, "item")
        and getattr(value, "ndim", 1) == 0
    ):
        return value.item()
    return value


def log_metadata(
    metadata: Mapping[str, Any],
    *,
    run_id_name_or_prefix: str | uuid.UUID | None = None,
    step_name: str | None = None,
    artifact_version_id: str | uuid.UUID | None = None,
    artifact_name: str | None = None,
    artifact_version: str | None = None,
    infer_artifact: bool = False,
    model_version_id: str | uuid.UUID | None = None,
    model_name: str | None = None,
    model_version: str | int | None = None,
    infer_model: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Attach JSON-like metadata to a step, a run, an artifact version or a model version.

    Inside a step it lands on that step; inside a ``@pipeline`` function body it
    lands on the run. ``run_id_name_or_prefix`` (a run name, sha or sha prefix)
    names a recorded run to annotate, and ``step_name`` one of its steps. The
    artifact and model arguments target versions (see the module docstring);
    inside a step those writes are made when the step is recorded. ``path`` is
    where to look for the repository. Values merge over earlier ones with the same key.
    """
    metadata = {key: _plain(value) for key, value in metadata.items()}
    for key, value in metadata.items():
        if not isinstance(key, str) or not is_recordable(value):
            raise UnrecordableParameterError(
                f"metadata {key!r}: a value of type {type(value).__qualname__} cannot be recorded; "
                "use JSON-like values (numbers, strings, lists, dicts)"
            )
    if artifact_version_id is not None or artifact_name is not None or infer_artifact:
        from mlops_lite.operations.models import log_artifact_metadata

        log_artifact_metadata(
            metadata,
            artifact_name=artifact_name,
            artifact_version=artifact_version,
            artifact_version_id=artifact_version_id,
            infer_artifact=infer_artifact,
            path=path,
        )
        return
    if model_version_id is not None or model_name is not None or infer_model:
        _log_model_metadata(metadata, model_version_id, model_name, model_version, path)
        return
    if run_id_name_or_prefix is not None:
        from mlops_lite.operations.annotate import annotate_run

        annotate_run(str(run_id_name_or_prefix), metadata, step_name=step_name, path=path)
        return
    if step_name is not None:
        raise DefinitionError("log_metadata(step_name=...) needs run_id_name_or_prefix=... too")
    context = current_step_context()
    if context is not None:
        context.metadata.update(metadata)
        return
    trace = current_trace()
    if trace is not None:
        trace.run_metadata.update(metadata)
        return
    raise DefinitionError(
        "log_metadata() was called outside a step and outside a pipeline definition; call it "
        "inside a @step function, inside the @pipeline function body for run metadata, or give "
        "run_id_name_or_prefix=... to annotate a recorded run"
    )


def _log_model_metadata(
    metadata: dict[str, Any],
    version_id: str | uuid.UUID | None,
    name: str | None,
    version: str | int | None,
    path: str | os.PathLike[str] | None,
) -> None:
    from mlops_lite.definition.model import Model
    from mlops_lite.operations.models import log_model_metadata

    if name is not None:
        model = Model(name, version=version, model_version_id=version_id)
        log_model_metadata(model, metadata, path=path)
        return
    context = current_step_context()
    if version_id is None and (context is None or context.bound_model is None):
        where = "the running step has no model" if context is not None else "outside a step"
        raise DefinitionError(
            f"log_metadata(infer_model=True): {where}; give the step or pipeline a "
            "model=Model(...), or name the version with model_name= and model_version="
        )
    if version_id is not None:
        _log_by_version_id(metadata, str(version_id), path)
        return
    assert context is not None
    log_model_metadata(context.bound_model, metadata)


def _log_by_version_id(
    metadata: dict[str, Any], version_id: str, path: str | os.PathLike[str] | None
) -> None:
    from mlops_lite.client import Client
    from mlops_lite.errors import ModelVersionNotFoundError
    from mlops_lite.operations.models import log_version_metadata

    wanted = uuid.UUID(version_id)
    with Client(path) as client:
        for model in client.list_models():
            for found in model.versions:
                if found.id == wanted:
                    log_version_metadata(found, metadata)
                    return
    raise ModelVersionNotFoundError(f"no model version has the id {version_id}")
