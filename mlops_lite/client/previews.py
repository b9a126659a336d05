"""Previews of step outputs for the dashboard, loading only what is safe and small enough."""

from __future__ import annotations

from typing import Final

from mlops_lite.client.views import Artifact
from mlops_lite.errors import MlopsLiteError, UntrustedPickleError
from mlops_lite.materializers import get_materializer
from mlops_lite.materializers.preview import Preview, Unavailable, preview_value

__all__ = ["MAX_PREVIEW_BYTES", "preview_artifact"]

MAX_PREVIEW_BYTES: Final = 64 * 1024 * 1024
"""Larger artifacts are not loaded for a preview: a page must not hold a server for seconds."""


def preview_artifact(artifact: Artifact, *, max_bytes: int = MAX_PREVIEW_BYTES) -> Preview:
    """A preview of ``artifact``, or ``Unavailable`` saying why not.

    A pickle is loaded only when ``Artifact.load`` would load it without being
    asked (the run is trusted): a preview never runs code nobody trusted.
    """
    where = f"output {artifact.name!r} of step {artifact.step_name!r}"
    if artifact.size > max_bytes:
        return Unavailable(
            f"{where} holds {artifact.size:,} bytes, too many to preview here; load it with "
            f"Client().get_pipeline_run({artifact.run.sha[:10]!r}).steps[{artifact.step_name!r}]"
            f".outputs[{artifact.name!r}].load()"
        )
    try:
        value = artifact.load()
        materializer = get_materializer(artifact.materializer)
    except UntrustedPickleError:
        return Unavailable(
            f"pickled, not loaded: {where} of run {artifact.run.name} by "
            f"{artifact.run.author_email or 'someone'} was pickled, and unpickling runs code; "
            "load it yourself if you trust it"
        )
    except MlopsLiteError as error:
        return Unavailable(f"{where} cannot be loaded here: {error}")
    try:
        return preview_value(value, materializer)
    except Exception as error:  # a broken preview hook must not break the page around it
        return Unavailable(f"no preview of {where}: {type(error).__name__}: {error}")
