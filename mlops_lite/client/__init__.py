"""The read side: ``Client`` and the views of pipelines, runs, step runs and artifacts it returns.

It reads refs and objects through the store and never imports the execution layer.
"""

from typing import TYPE_CHECKING, Any

from mlops_lite.client.client import Client
from mlops_lite.client.tables import MISSING, RunPage, RunTable
from mlops_lite.client.views import Artifact, RecordedPipeline, Run, StepRun
from mlops_lite.core.exports import load_export

if TYPE_CHECKING:
    from mlops_lite.client.artifact_versions import ArtifactVersion, RegisteredArtifact
    from mlops_lite.client.model_versions import ModelVersion, RegisteredModel
    from mlops_lite.client.registry_base import Page
    from mlops_lite.client.stack import ActiveStack

# The registry's views load on first use: reading runs does not need them.
_LAZY = {
    "ActiveStack": "mlops_lite.client.stack",
    "ArtifactVersion": "mlops_lite.client.artifact_versions",
    "ModelVersion": "mlops_lite.client.model_versions",
    "Page": "mlops_lite.client.registry_base",
    "RegisteredArtifact": "mlops_lite.client.artifact_versions",
    "RegisteredModel": "mlops_lite.client.model_versions",
}


def __getattr__(name: str) -> Any:
    return load_export(globals(), _LAZY, name)


__all__ = [
    "MISSING",
    "ActiveStack",
    "Artifact",
    "ArtifactVersion",
    "Client",
    "ModelVersion",
    "Page",
    "RecordedPipeline",
    "RegisteredArtifact",
    "RegisteredModel",
    "Run",
    "RunPage",
    "RunTable",
    "StepRun",
]
