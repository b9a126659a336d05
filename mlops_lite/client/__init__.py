"""The read side: ``Client`` and the views of pipelines, runs, step runs and artifacts it returns.

It reads refs and objects through the store and never imports the execution layer.
"""

from mlops_lite.client.client import Client
from mlops_lite.client.registry import (
    ArtifactVersion,
    ModelVersion,
    Page,
    RegisteredArtifact,
    RegisteredModel,
)
from mlops_lite.client.stack import ActiveStack
from mlops_lite.client.views import Artifact, RecordedPipeline, Run, StepRun

__all__ = [
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
    "StepRun",
]
