"""Running a traced pipeline: cache look-ups, step execution, recording the run.

``run_pipeline`` is imported on first use: importing a submodule (the rerun
environment protocol, the stacks) does not pull in the runner and everything
it needs, which every ``mlops-lite`` command would otherwise pay at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_lite.execution.runner import run_pipeline

__all__ = ["run_pipeline"]


def __getattr__(name: str) -> Any:
    if name == "run_pipeline":
        from mlops_lite.execution.runner import run_pipeline

        return run_pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
