"""``Client().active_stack``: the active stack as ZenML code reads it.

A ZenML stack has many components; an mlops_lite stack has an orchestrator
(``[tool.mlops-lite]`` in ``pyproject.toml``) and git as its artifact store.
Every other component ZenML code may look for (``alerter``,
``experiment_tracker``, ``model_registry``, ...) is None, which ZenML code
already handles ("no such component in the stack"). The stack configuration is
owned by ``mlops_lite.execution.stacks``, imported when the stack is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ActiveStack", "StackComponent", "read_active_stack"]

_ABSENT_COMPONENTS = (
    "alerter",
    "annotator",
    "container_registry",
    "data_validator",
    "deployer",
    "experiment_tracker",
    "feature_store",
    "image_builder",
    "model_deployer",
    "model_registry",
    "step_operator",
)


@dataclass(frozen=True)
class StackComponent:
    """One component of the stack: its name, flavor and settings."""

    name: str
    flavor: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActiveStack:
    """The active stack: ``name``, ``orchestrator`` and ``artifact_store`` (git); nothing else."""

    name: str
    orchestrator: StackComponent
    artifact_store: StackComponent

    def __getattr__(self, name: str) -> None:
        if name in _ABSENT_COMPONENTS:
            return None
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        """The stack as JSON-ready data."""
        return {
            "name": self.name,
            "orchestrator": self.orchestrator.flavor,
            "settings": dict(self.orchestrator.settings),
            "artifact_store": self.artifact_store.flavor,
        }


def read_active_stack(root: str) -> ActiveStack:
    """The stack the next run in ``root`` would use (``MLOPS_LITE_STACK``, pyproject, default)."""
    from mlops_lite.execution.stacks import active_stack

    stack = active_stack(root)
    return ActiveStack(
        name=stack.name,
        orchestrator=StackComponent(stack.orchestrator, stack.orchestrator, dict(stack.settings)),
        artifact_store=StackComponent("git", "git", {"path": root}),
    )
