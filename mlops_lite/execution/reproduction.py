"""How ``mlops-lite rerun`` tells the interpreter it starts what to reproduce.

The rerun runs the pipeline in a fresh interpreter whose working copy is a
temporary tree of the pinned commit. These variables carry the facts the run
must be recorded with; this module is their only owner (the rerun operation
writes them with ``environment_for``, the runner reads them with ``current``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from mlops_lite.core.variables import REPOSITORY_ENV, STRICT_ENV

__all__ = ["ENABLE_CACHE", "STRICT_ENV", "Reproduction", "current", "environment_for"]

_REPOSITORY: Final = REPOSITORY_ENV  # also read by GitStore.open(): Client() in steps
_CODE_COMMIT: Final = "MLOPS_LITE_CODE_COMMIT"
_REPRODUCES: Final = "MLOPS_LITE_REPRODUCES"
_SOURCE_ROOT: Final = "MLOPS_LITE_SOURCE_ROOT"
# Public: users set it too, to run a pipeline with or without the cache (and
# STRICT_ENV, to refuse workers whose Python or packages differ from the driver's).
ENABLE_CACHE: Final = "MLOPS_LITE_ENABLE_CACHE"


@dataclass(frozen=True, slots=True)
class Reproduction:
    """What the environment says about the run being made (all None for a normal run)."""

    repository: str | None = None  # record into this repository, not the working directory's
    code_commit: str | None = None  # pin to this commit instead of the work tree
    reproduces: str | None = None  # the sha of the run being reproduced
    source_root: str | None = None  # where the pipeline's code was materialized
    enable_cache: bool | None = None  # overrides every cache setting when set
    strict_env: bool | None = None  # overrides the pipeline's and stack's strict_env when set


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.lower() not in ("0", "false", "no", "off")


def current() -> Reproduction:
    """The settings of this process, read from its environment."""
    return Reproduction(
        repository=os.environ.get(_REPOSITORY) or None,
        code_commit=os.environ.get(_CODE_COMMIT) or None,
        reproduces=os.environ.get(_REPRODUCES) or None,
        source_root=os.environ.get(_SOURCE_ROOT) or None,
        enable_cache=_flag(os.environ.get(ENABLE_CACHE)),
        strict_env=_flag(os.environ.get(STRICT_ENV)),
    )


def environment_for(settings: Reproduction) -> dict[str, str]:
    """The variables that make a child interpreter's run follow ``settings``."""
    env = {
        _REPOSITORY: settings.repository,
        _CODE_COMMIT: settings.code_commit,
        _REPRODUCES: settings.reproduces,
        _SOURCE_ROOT: settings.source_root,
        ENABLE_CACHE: None
        if settings.enable_cache is None
        else ("1" if settings.enable_cache else "0"),
        STRICT_ENV: None if settings.strict_env is None else ("1" if settings.strict_env else "0"),
    }
    return {name: value for name, value in env.items() if value is not None}
