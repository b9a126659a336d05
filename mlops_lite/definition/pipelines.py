"""``@pipeline``: a function whose calls to steps are traced into a graph and run.

Calling a pipeline binds its parameters, calls the function with a trace
active (each step call adds an invocation and returns output handles), and
hands the graph to the execution layer.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from mlops_lite.core.names import did_you_mean, is_valid_name
from mlops_lite.core.values import is_recordable
from mlops_lite.definition.tracing import PipelineTrace, current_trace, tracing
from mlops_lite.errors import DefinitionError, UnrecordableParameterError

if TYPE_CHECKING:
    from mlops_lite.client import Run

__all__ = ["Pipeline", "PipelineOptions", "pipeline"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class PipelineOptions:
    """How a pipeline runs; set with ``@pipeline(...)`` or ``with_options(...)``."""

    enable_cache: bool = True
    run_name: str | None = None
    config_path: str | None = None
    # The resolved configuration content, recorded with the run.
    config: Mapping[str, Any] = field(default_factory=dict)
    # Per-invocation overrides from a configuration: {step name: {"parameters": {...},
    # "enable_cache": bool}}; explicit call arguments still win over them.
    step_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    orchestrator: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Pipeline:
    """A function declared with ``@pipeline``; calling it runs and records a run."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        options: PipelineOptions | None = None,
    ) -> None:
        self.entrypoint = func
        self.name = name or func.__name__
        # A pipeline name is one component of refs/mlops/runs/<pipeline>/<run>.
        if not is_valid_name(self.name, dots=False):
            raise DefinitionError(
                f"pipeline name {self.name!r} is not allowed: use letters, digits, '_' and '-'"
            )
        self.options = options or PipelineOptions()
        self.signature = inspect.signature(func)
        functools.update_wrapper(self, func)

    def bind_parameters(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied; refused unless recordable."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise DefinitionError(
                f"pipeline {self.name!r} called with the wrong arguments: {error}; "
                f"{self._arguments_hint(kwargs)}"
            ) from None
        bound.apply_defaults()
        for arg_name, value in bound.arguments.items():
            if not is_recordable(value):
                raise UnrecordableParameterError(
                    f"pipeline {self.name!r}, parameter {arg_name!r}: a value of type "
                    f"{type(value).__qualname__} cannot be recorded in the run; "
                    "pipeline parameters must be JSON-like "
                    "(None, bool, int, float, str, bytes, lists, tuples, dicts). To feed data "
                    "(a DataFrame, an array) into the pipeline, pass its path or name as the "
                    "parameter and load it inside a step, whose output is then an artifact"
                )
        return dict(bound.arguments)

    def _arguments_hint(self, kwargs: Mapping[str, Any]) -> str:
        """What to do about a call whose arguments do not fit the signature."""
        names = list(self.signature.parameters)
        unknown = [key for key in kwargs if key not in self.signature.parameters]
        if unknown:
            return (
                f"{did_you_mean(unknown[0], names)}the parameters of {self.name!r} are "
                f"{', '.join(names) or '(none)'}"
            )
        return (
            "give every parameter without a default in the call, in a configuration file's "
            "`parameters:` (with_options(config_path=...) or `mlops-lite run --config`), or "
            "with `mlops-lite run ... --param NAME=VALUE`"
        )

    def trace(self, parameters: Mapping[str, Any]) -> PipelineTrace:
        """Run the pipeline function with a trace active; return the graph it built."""
        trace = PipelineTrace(self.name, step_config=self.options.step_config)
        with tracing(trace):
            try:
                self.entrypoint(**parameters)
            except ValueError as error:
                explained = _explain_unpacking(error, trace, self.entrypoint)
                if explained is None:
                    raise
                raise explained from None
        if not trace.invocations:
            raise DefinitionError(f"pipeline {self.name!r} calls no step")
        return trace

    def __call__(self, *args: Any, **kwargs: Any) -> Run:
        """Run the pipeline and record the run; returns the recorded run."""
        if current_trace() is not None:
            raise DefinitionError(f"pipeline {self.name!r} was called inside another pipeline")
        # The one call from definition up to execution: running is its job, and
        # importing it here keeps defining pipelines from ever loading it.
        from mlops_lite.execution import run_pipeline

        return run_pipeline(self, args, kwargs)

    def with_options(
        self,
        *,
        enable_cache: bool | None = None,
        run_name: str | None = None,
        config_path: str | None = None,
        config: Mapping[str, Any] | None = None,
        orchestrator: str | None = None,
        **extra: Any,
    ) -> Pipeline:
        """A copy with some options changed.

        ``config_path`` (a YAML/TOML/JSON file) or ``config`` (its content) is
        loaded and checked when the pipeline is called.
        """
        changes: dict[str, Any] = {}
        for key, value in (
            ("enable_cache", enable_cache),
            ("run_name", run_name),
            ("config_path", config_path),
            ("config", config),
            ("orchestrator", orchestrator),
        ):
            if value is not None:
                changes[key] = value
        if extra:
            changes["extra"] = {**self.options.extra, **extra}
        return Pipeline(
            self.entrypoint, name=self.name, options=dataclasses.replace(self.options, **changes)
        )

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


def _explain_unpacking(
    error: ValueError, trace: PipelineTrace, function: Callable[..., Any]
) -> DefinitionError | None:
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    # Only an unpacking done by the pipeline body itself is about step outputs.
    if frame is None or frame.tb_frame.f_code is not getattr(function, "__code__", None):
        return None
    message = str(error)
    match = re.search(r"(not enough|too many) values to unpack \(expected (\d+)", message)
    invocation = trace.last_invocation
    if match is None or invocation is None:
        return None
    outputs = [o.name for o in invocation.step.outputs]
    return DefinitionError(
        f"step {invocation.name!r} returns {len(outputs)} outputs {outputs}, but the pipeline "
        f"unpacks its result into {match.group(2)} names; unpack exactly {len(outputs)}"
    )


@overload
def pipeline(func: F, /) -> Pipeline: ...


@overload
def pipeline(
    *,
    name: str | None = None,
    enable_cache: bool = True,
    run_name: str | None = None,
    config_path: str | None = None,
    orchestrator: str | None = None,
    **extra: Any,
) -> Callable[[F], Pipeline]: ...


def pipeline(func: Any = None, /, **options: Any) -> Any:
    """Declare a pipeline: ``@pipeline`` or ``@pipeline(enable_cache=False, ...)``."""
    if func is not None:
        if options:
            raise DefinitionError("use @pipeline or @pipeline(...), not both")
        return Pipeline(func)

    def decorate(f: Callable[..., Any]) -> Pipeline:
        settings = dict(options)
        base = Pipeline(f, name=settings.pop("name", None))
        return base.with_options(**settings) if settings else base

    return decorate
