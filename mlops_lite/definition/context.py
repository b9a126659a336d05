"""``get_step_context()``: what a running step knows about the run it is part of."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

from mlops_lite.errors import DefinitionError

__all__ = [
    "StepContext",
    "current_step_context",
    "get_step_context",
    "reset_step_context",
    "set_step_context",
]


@dataclass
class StepContext:
    """What a step knows about the run it is part of."""

    run_name: str
    step_name: str
    pipeline_name: str
    cache_key: str
    output_names: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """A 32-bit seed derived from the step's cache key: same inputs, same seed."""
        return int(self.cache_key[:8], 16)


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "mlops_lite_step", default=None
)


def get_step_context() -> StepContext:
    """The context of the step that is running now."""
    context = _current.get()
    if context is None:
        raise DefinitionError(
            "get_step_context() was called outside a running step; call it from inside a @step "
            "function while its pipeline runs"
        )
    return context


def current_step_context() -> StepContext | None:
    """The running step's context, or None outside a step."""
    return _current.get()


def set_step_context(context: StepContext | None) -> contextvars.Token[StepContext | None]:
    """Make ``context`` the running step's (the executor does this around a step)."""
    return _current.set(context)


def reset_step_context(token: contextvars.Token[StepContext | None]) -> None:
    """Undo ``set_step_context``."""
    _current.reset(token)
