"""One console line per step as the run goes (started, cached, finished, failed), as ZenML does.

Written to stderr, so a script's own output on stdout stays its own; silenced
by ``MLOPS_LITE_QUIET=1``, ``mlops-lite run --quiet`` or
``pipeline.with_options(quiet=True)``.
"""

from __future__ import annotations

import os
import sys
from typing import Final, TextIO

from mlops_lite.core.command import cli_command
from mlops_lite.core.records import StepRecord

__all__ = ["QUIET_ENV", "Progress", "quiet_requested"]

QUIET_ENV: Final = "MLOPS_LITE_QUIET"


def quiet_requested(option: object = None) -> bool:
    """Whether the console lines are off: the pipeline's ``quiet`` option or the environment."""
    if option is not None:
        return bool(option)
    return os.environ.get(QUIET_ENV, "").strip().lower() not in ("", "0", "false", "no")


class Progress:
    """Prints what happens to each step of one run."""

    def __init__(self, pipeline: str, run_name: str, *, quiet: bool, stream: TextIO | None = None):
        self.pipeline = pipeline
        self.run_name = run_name
        self.quiet = quiet
        self._stream = stream

    def _print(self, line: str) -> None:
        if self.quiet:
            return
        stream = self._stream or sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):
            self.quiet = True  # a closed or broken console must not stop the run

    def run_started(self) -> None:
        """The run is recorded as running."""
        self._print(f"Run {self.pipeline}/{self.run_name} started.")

    def step_started(self, name: str, attempt: int) -> None:
        """A step was handed to the orchestrator."""
        again = f" (attempt {attempt})" if attempt > 1 else ""
        self._print(f"Step {name} started{again}.")

    def step_recorded(self, record: StepRecord) -> None:
        """A step's outcome, once recorded."""
        name, status = record.name, record.status
        if status == "cached":
            origin = record.cached_from or {}
            self._print(f"Step {name} cached: reusing its outputs from run {origin.get('run')}.")
        elif status == "completed":
            self._print(f"Step {name} completed in {_seconds(record)}.")
        elif status == "failed":
            last = (record.error or "").strip().splitlines()[-1:] or ["failed"]
            self._print(f"Step {name} failed after {_seconds(record)}: {last[0]}")
        elif status == "cancelled":
            self._print(f"Step {name} cancelled after {_seconds(record)}.")
        elif status == "skipped":
            self._print(f"Step {name} skipped: {record.error or 'not run'}.")

    def run_finished(self, status: str, seconds: float) -> None:
        """The run is recorded."""
        self._print(
            f"Run {self.pipeline}/{self.run_name} {status} in {seconds:.2f}s; "
            f"see `{cli_command()} runs show {self.run_name}`."
        )


def _seconds(record: StepRecord) -> str:
    duration = record.duration
    return "?" if duration is None else f"{duration:.3f}s"
