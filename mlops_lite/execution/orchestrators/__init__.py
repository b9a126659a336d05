"""Orchestrators: where step tasks run (this process, worker processes, a Dask cluster).

``create_orchestrator`` builds one by name from its settings; each is imported
only when chosen, so ``local`` runs never import process or cluster code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_lite.errors import ConfigError
from mlops_lite.execution.orchestrators.base import Completion, Job, Orchestrator, positive_int

__all__ = ["ORCHESTRATOR_SETTINGS", "Completion", "Job", "Orchestrator", "create_orchestrator"]

# The settings each orchestrator reads (from a stack, or with_options(...) extras).
ORCHESTRATOR_SETTINGS: dict[str, tuple[str, ...]] = {
    "local": (),
    "pool": ("workers", "gpus"),
    "dask": ("address", "workers", "connect_timeout", "strict_env"),
}


def create_orchestrator(name: str, settings: Mapping[str, Any]) -> Orchestrator:
    """The orchestrator called ``name``, built from its settings (ConfigError if they are wrong)."""
    if name == "local":
        from mlops_lite.execution.orchestrators.local import LocalOrchestrator

        return LocalOrchestrator()
    if name == "pool":
        from mlops_lite.execution.orchestrators.pool import PoolOrchestrator

        workers = settings.get("workers")
        gpus = settings.get("gpus", 0)
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
            raise ConfigError(
                f"orchestrator 'pool': gpus must be a whole number >= 0 (the GPUs steps may "
                f"share), got {gpus!r}"
            )
        return PoolOrchestrator(
            positive_int(settings, "workers", 1, name) if workers is not None else None,
            gpus=gpus,
        )
    if name == "dask":
        from mlops_lite.execution.orchestrators.dask import DaskOrchestrator

        address = settings.get("address")
        if address is not None and not isinstance(address, str):
            raise ConfigError(f"orchestrator 'dask': address must be a string, got {address!r}")
        workers = settings.get("workers")
        connect_timeout = settings.get("connect_timeout", 30.0)
        if (
            isinstance(connect_timeout, bool)
            or not isinstance(connect_timeout, (int, float))
            or connect_timeout <= 0
        ):
            raise ConfigError(
                "orchestrator 'dask': connect_timeout must be a positive number of seconds, "
                f"got {connect_timeout!r}"
            )
        strict_env = settings.get("strict_env", False)
        if not isinstance(strict_env, bool):
            raise ConfigError(
                f"orchestrator 'dask': strict_env must be true or false, got {strict_env!r}"
            )
        return DaskOrchestrator(
            address=address or None,
            workers=positive_int(settings, "workers", 1, name) if workers is not None else None,
            connect_timeout=float(connect_timeout),
            strict_env=strict_env,
        )
    raise ConfigError(
        f"unknown orchestrator {name!r}: choose one of {', '.join(ORCHESTRATOR_SETTINGS)}"
    )
