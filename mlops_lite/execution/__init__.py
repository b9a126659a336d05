"""Running a traced pipeline: cache look-ups, step execution, recording the run."""

from mlops_lite.execution.runner import run_pipeline

__all__ = ["run_pipeline"]
