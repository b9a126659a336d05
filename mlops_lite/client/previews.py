"""Previews of step outputs for the dashboard, loading only what is safe and small enough."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from mlops_lite.client.artifact_versions import ArtifactVersion
from mlops_lite.client.views import Artifact
from mlops_lite.errors import MlopsLiteError, UntrustedPickleError
from mlops_lite.materializers import get_materializer
from mlops_lite.materializers.preview import Preview, Unavailable, preview_value

__all__ = ["MAX_PREVIEW_BYTES", "preview_artifact", "preview_artifact_version"]

MAX_PREVIEW_BYTES: Final = 64 * 1024 * 1024
"""Larger artifacts are not loaded for a preview: a page must not hold a server for seconds."""


def preview_artifact(artifact: Artifact, *, max_bytes: int = MAX_PREVIEW_BYTES) -> Preview:
    """A preview of ``artifact``, or ``Unavailable`` saying why not.

    A pickle is loaded only when ``Artifact.load`` would load it without being
    asked (the run is trusted): a preview never runs code nobody trusted.
    """
    return _preview(
        artifact.load,
        materializer=artifact.materializer,
        size=artifact.size,
        max_bytes=max_bytes,
        where=f"output {artifact.name!r} of step {artifact.step_name!r}",
        made_by=f"of run {artifact.run.name} by {artifact.run.author_email or 'someone'}",
        load_hint=f"Client().get_pipeline_run({artifact.run.sha[:10]!r})"
        f".steps[{artifact.step_name!r}].outputs[{artifact.name!r}].load()",
    )


def preview_artifact_version(
    version: ArtifactVersion, *, max_bytes: int = MAX_PREVIEW_BYTES
) -> Preview:
    """A preview of a named artifact version, by the same rules as ``preview_artifact``."""
    return _preview(
        version.load,
        materializer=version.materializer,
        size=version.size,
        max_bytes=max_bytes,
        where=f"artifact {version.name!r} version {version.version}",
        made_by=f"by {version.author or 'someone'}",
        load_hint=f"Client().get_artifact_version({version.name!r}, {version.version!r}).load()",
    )


def _preview(
    load: Callable[[], Any],
    *,
    materializer: str,
    size: int,
    max_bytes: int,
    where: str,
    made_by: str,
    load_hint: str,
) -> Preview:
    if size > max_bytes:
        return Unavailable(
            f"{where} holds {size:,} bytes, too many to preview here; load it with {load_hint}"
        )
    try:
        value = load()
        found = get_materializer(materializer)
    except UntrustedPickleError:
        return Unavailable(
            f"pickled, not loaded: {where} {made_by} was pickled, and unpickling runs code; "
            "load it yourself if you trust it"
        )
    except MlopsLiteError as error:
        return Unavailable(f"{where} cannot be loaded here: {error}")
    try:
        return preview_value(value, found)
    except Exception as error:  # a broken preview hook must not break the page around it
        return Unavailable(f"no preview of {where}: {type(error).__name__}: {error}")
