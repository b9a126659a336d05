"""What a step asks of the machine that runs it: ZenML's ``ResourceSettings`` names.

::

    @step(settings={"resources": {"cpu_count": 2, "gpu_count": 1, "memory": "8GiB"}})

This module only reads and checks the request, once, for every caller: the
definition layer (so a wrong request fails at decoration time) and the
orchestrators that place steps by it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_lite.core.sizes import format_size, parse_size
from mlops_lite.errors import DefinitionError

__all__ = ["ResourceRequest", "parse_resources", "resources_in_settings"]

_KNOWN = ("cpu_count", "gpu_count", "memory")
# ResourceSettings fields about serving deployments: accepted (recorded), nothing to place.
_DEPLOYMENT_ONLY = (
    "min_replicas",
    "max_replicas",
    "autoscaling_metric",
    "autoscaling_target",
    "max_concurrency",
)


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    """A step's request: CPUs (may be fractional), GPUs, memory in bytes; None: not asked."""

    cpu_count: float | None = None
    gpu_count: int | None = None
    memory: int | None = None

    def __bool__(self) -> bool:
        return any(value for value in (self.cpu_count, self.gpu_count, self.memory))

    @property
    def cpu_slots(self) -> int:
        """Whole CPUs the step occupies on a worker that counts CPUs (at least one)."""
        return max(1, math.ceil(self.cpu_count or 1))

    def describe(self) -> str:
        """``2 CPUs, 1 GPU, 8.0 GiB of memory``; ``nothing`` for an empty request."""
        parts = []
        if self.cpu_count:
            parts.append(f"{self.cpu_count:g} CPU{'s' if self.cpu_count != 1 else ''}")
        if self.gpu_count:
            parts.append(f"{self.gpu_count} GPU{'s' if self.gpu_count != 1 else ''}")
        if self.memory:
            parts.append(f"{format_size(self.memory)} of memory")
        return ", ".join(parts) or "nothing"


def parse_resources(value: Any, where: str) -> ResourceRequest:
    """``settings["resources"]`` as a request; ``DefinitionError`` naming ``where`` if wrong."""
    if value is None:
        return ResourceRequest()
    dump = getattr(value, "model_dump", None)  # ZenML's pydantic ResourceSettings
    if not isinstance(value, Mapping) and callable(dump):
        value = {key: item for key, item in dump().items() if item is not None}
    if not isinstance(value, Mapping):
        raise DefinitionError(
            f"{where}: settings['resources'] must be a mapping such as "
            f"{{'cpu_count': 2, 'gpu_count': 1, 'memory': '8GiB'}}, got {value!r}"
        )
    for key in value:
        if key not in _KNOWN and key not in _DEPLOYMENT_ONLY:
            close = difflib.get_close_matches(str(key), _KNOWN, n=1, cutoff=0.4)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DefinitionError(
                f"{where}: unknown resource {key!r}{hint}; a step can ask for "
                f"{', '.join(_KNOWN)} (ZenML's ResourceSettings names)"
            )
    cpu = value.get("cpu_count")
    if cpu is not None and (
        isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or not 0 < cpu < math.inf
    ):
        raise DefinitionError(f"{where}: cpu_count must be a positive number, got {cpu!r}")
    gpu = value.get("gpu_count")
    if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0):
        raise DefinitionError(f"{where}: gpu_count must be a whole number >= 0, got {gpu!r}")
    memory = value.get("memory")
    size = None if memory is None else parse_size(memory)
    if memory is not None and not size:
        raise DefinitionError(
            f"{where}: memory must be a size such as '8GiB', '512MB' or '8Gi', got {memory!r}"
        )
    return ResourceRequest(
        float(cpu) if cpu is not None else None, gpu if gpu else None, size if size else None
    )


def resources_in_settings(settings: Any, where: str) -> ResourceRequest:
    """The request in a step's ``settings`` mapping (empty when it has no ``resources``)."""
    if not isinstance(settings, Mapping):
        return ResourceRequest()
    return parse_resources(settings.get("resources"), where)
