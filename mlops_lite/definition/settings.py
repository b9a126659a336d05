"""ZenML options that are accepted and recorded but change nothing here, and their one warning.

``settings`` (``docker``, per-component settings) configure containers and remote
infrastructure, which mlops_lite does not have: steps run in the environment that
runs the pipeline. Such an option is recorded with the run, and the first use of
each in a process gives one ``CompatibilityWarning``. A step's ``resources`` are the
exception: they place the step (``core.resources``), so they are checked, not warned.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from typing import Any

from mlops_lite.core.resources import parse_resources
from mlops_lite.core.values import is_recordable
from mlops_lite.errors import CompatibilityWarning, DefinitionError

__all__ = ["NO_EFFECT_OPTIONS", "check_settings", "plain", "warn_once"]

# Step and pipeline options of ZenML that mean nothing without a server or a stack
# of remote components; recorded under the step's or run's settings.
NO_EFFECT_OPTIONS = (
    "build",
    "enable_artifact_metadata",
    "enable_artifact_visualization",
    "enable_step_logs",
    "experiment_tracker",
    "retry",
    "schedule",
    "step_operator",
    "substitutions",
    "tags",
)

_warned: set[str] = set()
_lock = threading.Lock()


def warn_once(key: str, message: str, *, stacklevel: int = 3) -> None:
    """Warn with ``message`` the first time ``key`` is seen in this process."""
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, CompatibilityWarning, stacklevel=stacklevel)


def plain(value: Any) -> Any:
    """A settings value as plain data: pydantic-style objects by their fields, else as given."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    for method in ("model_dump", "dict"):
        dump = getattr(value, method, None)
        if callable(dump):
            try:
                return plain(dump())
            except TypeError:
                continue
    return value


def check_settings(settings: Any, where: str, *, step: bool = False) -> dict[str, Any]:
    """``settings`` as recordable data, warning once per key that it has no effect.

    A step's ``resources`` do have an effect (the orchestrators place the step by
    them): they are checked here, so a wrong request fails where it is written.
    """
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise DefinitionError(
            f"{where}: settings must be a mapping such as {{'docker': {{...}}}}, "
            f"got {type(settings).__name__}"
        )
    result = plain(settings)
    if not is_recordable(result):
        raise DefinitionError(
            f"{where}: settings must hold JSON-like values (numbers, strings, lists, dicts) "
            "to be recorded"
        )
    for key in result:
        if step and key == "resources":
            parse_resources(result[key], where)
            continue
        warn_once(
            f"settings:{key}",
            f"{where}: settings {key!r} are recorded with the run but have no effect in "
            "mlops_lite: steps run in this environment, without containers or remote "
            "components (see docs/coming-from-zenml.md)",
        )
    return dict(result)
