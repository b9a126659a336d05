"""The statuses of runs and steps, as stored in their records."""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["FINISHED_STEP_STATUSES", "RUN_STATUSES", "STEP_STATUSES", "RunStatus", "StepStatus"]

RunStatus = Literal["running", "completed", "failed", "crashed", "cancelled"]
"""``running`` while recorded; ``crashed`` if its process died; ``cancelled`` on SIGINT/SIGTERM."""

StepStatus = Literal["running", "completed", "cached", "failed", "skipped", "cancelled"]
"""``cached`` reused an earlier execution; ``skipped`` never ran (an upstream step failed)."""

RUN_STATUSES: Final[tuple[RunStatus, ...]] = get_args(RunStatus)
STEP_STATUSES: Final[tuple[StepStatus, ...]] = get_args(StepStatus)

# Steps whose outputs exist and may be reused by the cache.
FINISHED_STEP_STATUSES: Final[frozenset[StepStatus]] = frozenset({"completed", "cached"})
