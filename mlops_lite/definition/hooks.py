"""``on_failure`` / ``on_success`` hooks: which function, its recorded name, calling it.

As in ZenML, a hook runs right after the step, in the step's process, with the
step's context (``get_step_context()`` works in it). A failure hook may take one
argument: the exception the step raised. A hook given on the pipeline applies to
every step that has none of its own. A hook that raises is reported in the step's
logs and does not change the step's outcome.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any, cast

from mlops_lite.errors import DefinitionError

__all__ = ["Hook", "check_hook", "hook_name", "run_hook"]

Hook = Callable[..., Any] | str


def check_hook(hook: Any, where: str) -> Hook | None:
    """``hook`` if it is a function or a ``"module.function"`` path, else a DefinitionError."""
    if hook is None or callable(hook):
        return cast(Hook | None, hook)
    if isinstance(hook, str) and "." in hook:
        return hook
    raise DefinitionError(
        f"{where}: a hook is a function or a 'module.function' path, not {type(hook).__name__}"
    )


def hook_name(hook: Hook | None) -> str | None:
    """How a hook is recorded: ``module.qualname``."""
    if hook is None or isinstance(hook, str):
        return hook
    module = getattr(hook, "__module__", "?")
    return f"{module}.{getattr(hook, '__qualname__', repr(hook))}"


def _load(hook: Hook) -> Callable[..., Any]:
    if not isinstance(hook, str):
        return hook
    module_name, _, attribute = hook.rpartition(".")
    function = getattr(importlib.import_module(module_name), attribute)
    if not callable(function):
        raise DefinitionError(f"hook {hook!r} is not a function")
    return function  # type: ignore[no-any-return]


def run_hook(hook: Hook | None, kind: str, exception: BaseException | None = None) -> None:
    """Call ``hook`` (with the exception, if it takes an argument); print what it raises."""
    if hook is None:
        return
    try:
        function = _load(hook)
        try:
            takes_argument = bool(inspect.signature(function).parameters)
        except (TypeError, ValueError):
            takes_argument = False
        if takes_argument and exception is not None:
            function(exception)
        else:
            function()
    except Exception:
        import traceback

        # stderr is the step's log while it runs: the error is kept with the step.
        print(
            f"mlops-lite: the {kind} hook {hook_name(hook)} raised; the step's outcome is "
            f"unchanged:\n{traceback.format_exc()}",
            file=sys.stderr,
        )
