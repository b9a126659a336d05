"""mlops_lite: pipelines, steps, artifacts and tracked runs, stored as git objects.

Only re-exports live here, loaded on first use so ``import mlops_lite`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Artifact": "mlops_lite.client",
    "Client": "mlops_lite.client",
    "Materializer": "mlops_lite.materializers",
    "Pipeline": "mlops_lite.pipelines",
    "Run": "mlops_lite.client",
    "Step": "mlops_lite.steps",
    "StepContext": "mlops_lite.context",
    "errors": "mlops_lite.errors",
    "get_step_context": "mlops_lite.context",
    "log_metadata": "mlops_lite.context",
    "pipeline": "mlops_lite.pipelines",
    "register_materializer": "mlops_lite.materializers",
    "step": "mlops_lite.steps",
    "unmapped": "mlops_lite.steps",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from mlops_lite import errors as errors
    from mlops_lite.client import Artifact as Artifact
    from mlops_lite.client import Client as Client
    from mlops_lite.client import Run as Run
    from mlops_lite.context import StepContext as StepContext
    from mlops_lite.context import get_step_context as get_step_context
    from mlops_lite.context import log_metadata as log_metadata
    from mlops_lite.materializers import Materializer as Materializer
    from mlops_lite.materializers import register_materializer as register_materializer
    from mlops_lite.pipelines import Pipeline as Pipeline
    from mlops_lite.pipelines import pipeline as pipeline
    from mlops_lite.steps import Step as Step
    from mlops_lite.steps import step as step
    from mlops_lite.steps import unmapped as unmapped

def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mlops_lite' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name == "errors" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*globals(), *__all__]
