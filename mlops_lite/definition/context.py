"""``get_step_context()``: what a running step knows about the run it is part of."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_lite.core.ids import stable_uuid
from mlops_lite.errors import DefinitionError

if TYPE_CHECKING:
    import uuid

__all__ = [
    "PendingWrite",
    "PipelineInfo",
    "PipelineRunInfo",
    "RunConfiguration",
    "StepContext",
    "StepRunInfo",
    "current_step_context",
    "get_step_context",
    "reset_step_context",
    "set_step_context",
]


@dataclass(frozen=True)
class RunConfiguration:
    """The configuration of the running run, as ``pipeline_run.config`` shows it."""

    enable_cache: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineInfo:
    """The pipeline a step belongs to (``get_step_context().pipeline``)."""

    name: str

    @property
    def id(self) -> uuid.UUID:
        """A UUID derived from the pipeline's name (the same in every clone)."""
        return stable_uuid("pipeline", self.name)


@dataclass(frozen=True)
class PipelineRunInfo:
    """The run a step is part of (``get_step_context().pipeline_run``), while it runs."""

    name: str
    pipeline_name: str
    config: RunConfiguration = field(default_factory=RunConfiguration)

    @property
    def id(self) -> uuid.UUID:
        """A UUID derived from the run's ref; ``Run.id`` gives the same one."""
        return stable_uuid("run", self.pipeline_name, self.name)


@dataclass(frozen=True)
class StepRunInfo:
    """The running step (``get_step_context().step_run``)."""

    name: str
    pipeline_name: str
    run_name: str

    @property
    def id(self) -> uuid.UUID:
        """A UUID derived from the run and step; ``StepRun.id`` gives the same one."""
        return stable_uuid("step", self.pipeline_name, self.run_name, self.name)


@dataclass
class PendingWrite:
    """A registry write asked for inside a step, done by the driver once the step is recorded.

    Steps may run in other processes or machines; only the driver moves refs.
    ``action`` is ``set_stage``, ``model_metadata``, ``artifact_metadata`` or
    ``save_artifact``; ``arguments`` are its plain-data arguments.
    """

    action: str
    arguments: dict[str, Any]


@dataclass
class StepContext:
    """What a step knows about the run it is part of."""

    run_name: str
    step_name: str
    pipeline_name: str
    cache_key: str
    output_names: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    # The model version this step works on (a ``Model`` bound to it), if any.
    bound_model: Any = None
    config: RunConfiguration = field(default_factory=RunConfiguration)
    # Outputs kept as named artifact versions: {output name: artifact name}.
    artifact_names: dict[str, str] = field(default_factory=dict)
    pending_writes: list[PendingWrite] = field(default_factory=list)

    @property
    def seed(self) -> int:
        """A 32-bit seed derived from the step's cache key: same inputs, same seed."""
        return int(self.cache_key[:8], 16)

    @property
    def model(self) -> Any:
        """The model version this step works on (a ``Model``): ``.number``, ``.set_stage``...

        A ``DefinitionError`` when neither the step nor its pipeline has a model, as
        ZenML raises.
        """
        if self.bound_model is None:
            raise DefinitionError(
                f"step {self.step_name!r} has no model: give the step or its pipeline "
                "model=Model(name=...) (or model: in the configuration file)"
            )
        return self.bound_model

    @property
    def pipeline(self) -> PipelineInfo:
        """The pipeline this step belongs to."""
        return PipelineInfo(self.pipeline_name)

    @property
    def pipeline_run(self) -> PipelineRunInfo:
        """The run this step is part of."""
        return PipelineRunInfo(self.run_name, self.pipeline_name, self.config)

    @property
    def step_run(self) -> StepRunInfo:
        """The running step, in this run."""
        return StepRunInfo(self.step_name, self.pipeline_name, self.run_name)


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
