"""Following a step's logs while it runs: ``mlops-lite logs -f <run> <step>``."""

from __future__ import annotations

import time
from collections.abc import Iterator

from mlops_lite.client.client import Client
from mlops_lite.client.views import Run

__all__ = ["follow_logs"]


def follow_logs(
    client: Client, run_id: str, step: str, *, poll_seconds: float = 0.2
) -> Iterator[str]:
    """The step's logs as they grow, until it ends (then its error, if it failed).

    Waits for a step that has not started yet while the run is running; a step
    the finished run does not have is a ``StepNotFoundError``.
    """
    run = client.get_pipeline_run(run_id)
    shown = ""
    while True:
        current = _current(client, run)
        found = current.steps.get(step)
        if found is None and current.status != "running":
            found = current.get_step(step)  # not there: raises, listing the steps it has
        if found is not None:
            text = found.logs
            if found.status != "running" and found.error:
                text += ("" if not text or text.endswith("\n") else "\n") + found.error
            # The recorded logs start with what the live file showed (retries aside).
            fresh = text[len(shown) :] if text.startswith(shown) else ""
            if fresh:
                yield fresh
                shown = text
            if found.status != "running":
                return
        time.sleep(poll_seconds)


def _current(client: Client, run: Run) -> Run:
    """The run as recorded now: its ref moves from the running commit to the final one."""
    return Run(client, client._store.refs.read(run.ref) or run.sha)
