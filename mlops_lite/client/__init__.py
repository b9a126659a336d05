"""The read side: ``Client`` and the views of pipelines, runs, step runs and artifacts it returns.

It reads refs and objects through the store and never imports the execution layer.
"""

from mlops_lite.client.client import Client
from mlops_lite.client.tables import MISSING, RunPage, RunTable
from mlops_lite.client.views import Artifact, RecordedPipeline, Run, StepRun

__all__ = [
    "MISSING",
    "Artifact",
    "Client",
    "RecordedPipeline",
    "Run",
    "RunPage",
    "RunTable",
    "StepRun",
]
