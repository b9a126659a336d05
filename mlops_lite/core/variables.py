"""Environment variables read by more than one layer, named once."""

from __future__ import annotations

from typing import Final

__all__ = ["REPOSITORY_ENV", "STRICT_ENV"]

# The repository a run records into, instead of the working directory's: set for a
# rerun's child interpreter (execution.reproduction) and read by GitStore.open(), so
# that Client() inside a step finds the same repository.
REPOSITORY_ENV: Final = "MLOPS_LITE_REPOSITORY"

# Refuse Dask workers whose Python or packages differ from the driver's: named in
# `mlops-lite run --strict-env`'s help (cli), read by the runner (execution).
STRICT_ENV: Final = "MLOPS_LITE_STRICT_ENV"
