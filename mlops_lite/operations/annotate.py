"""Adding metadata to a recorded run: what ``log_metadata(run_id_name_or_prefix=...)`` writes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mlops_lite.client import Client
from mlops_lite.core.secrets import scrub_value
from mlops_lite.store import GitStore
from mlops_lite.store.annotations import add_annotations

__all__ = ["annotate_run"]


def annotate_run(
    run: str,
    metadata: Mapping[str, Any],
    *,
    step_name: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Merge ``metadata`` into a recorded run (or one of its steps), leaving the run as it is.

    It is stored beside the run, under ``refs/mlops/metadata/``, and shows in
    ``run.metadata`` / ``step.metadata``; the run's sha stays the same.
    """
    with GitStore.open(path) as store, Client(store=store) as client:
        target = client.get_pipeline_run(run)
        if step_name is not None:
            target.get_step(step_name)  # a clear error for a step the run does not have
        # Values from mlops_lite.secret() never reach git.
        add_annotations(store, target.ref, scrub_value(dict(metadata)), step=step_name)
