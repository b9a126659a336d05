"""mlops_lite: pipelines, steps, artifacts and tracked runs, stored as git objects.

The public names are the imports in the ``TYPE_CHECKING`` block below: that
block is the one export list. Type checkers read it as written; at run time
each name is imported on first use, so ``import mlops_lite`` stays fast.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mlops_lite.core.exports import load_export

if TYPE_CHECKING:
    from mlops_lite import errors as errors
    from mlops_lite.client import Artifact as Artifact
    from mlops_lite.client import ArtifactVersion as ArtifactVersion
    from mlops_lite.client import Client as Client
    from mlops_lite.client import ModelVersion as ModelVersion
    from mlops_lite.client import RecordedPipeline as RecordedPipeline
    from mlops_lite.client import Run as Run
    from mlops_lite.client import StepRun as StepRun
    from mlops_lite.definition.artifact_config import ArtifactConfig as ArtifactConfig
    from mlops_lite.definition.context import StepContext as StepContext
    from mlops_lite.definition.context import get_step_context as get_step_context
    from mlops_lite.definition.model import Model as Model
    from mlops_lite.definition.pipeline_context import get_pipeline_context as get_pipeline_context
    from mlops_lite.definition.pipelines import Pipeline as Pipeline
    from mlops_lite.definition.pipelines import pipeline as pipeline
    from mlops_lite.definition.steps import Step as Step
    from mlops_lite.definition.steps import step as step
    from mlops_lite.definition.steps import unmapped as unmapped
    from mlops_lite.materializers import Materializer as Materializer
    from mlops_lite.materializers import register_materializer as register_materializer
    from mlops_lite.operations.diff import diff as diff
    from mlops_lite.operations.metadata import log_metadata as log_metadata
    from mlops_lite.operations.models import load_artifact as load_artifact
    from mlops_lite.operations.models import register_artifact as register_artifact
    from mlops_lite.operations.models import save_artifact as save_artifact
    from mlops_lite.operations.rerun import rerun as rerun
    from mlops_lite.operations.secrets import secret as secret
    from mlops_lite.operations.sharing import pull as pull
    from mlops_lite.operations.sharing import push as push


def _read_exports() -> dict[str, str]:
    """``{name: module}`` from the block above (a regex: ``ast`` would cost more than the rest)."""
    with open(__file__, encoding="utf-8") as source:
        text = source.read()
    block = text[text.index("if TYPE_CHECKING:") : text.index("\n\n\ndef _read_exports")]
    found = re.findall(r"^    from ([\w.]+) import (\w+) as \2$", block, re.MULTILINE)
    return {
        name: f"{module}.{name}" if module == "mlops_lite" else module for module, name in found
    }


_EXPORTS = _read_exports()
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name != "__version__":
        return load_export(globals(), _EXPORTS, name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("mlops-lite")
    except PackageNotFoundError:  # imported from a checkout that was never installed
        value = "0+unknown"
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*globals(), *__all__, "__version__"]
