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
from mlops_lite.definition.hooks import Hook, check_hook
from mlops_lite.definition.parameters import call_parameters, recordable_parameter
from mlops_lite.definition.settings import NO_EFFECT_OPTIONS, check_settings, warn_once
from mlops_lite.definition.tracing import PipelineTrace, current_trace, tracing
from mlops_lite.errors import DefinitionError, UnrecordableParameterError

if TYPE_CHECKING:
    pass

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
    # Orchestrator settings (workers, fail_fast, ...) and ZenML's free-form ``extra``.
    extra: Mapping[str, Any] = field(default_factory=dict)
    # ZenML's: settings are recorded (with a warning: no effect here); the model is the
    # version the run works on; hooks apply to every step that has none of its own.
    settings: Mapping[str, Any] = field(default_factory=dict)
    model: Any = None
    on_failure: Hook | None = None
    on_success: Hook | None = None


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
            value = bound.arguments[arg_name] = recordable_parameter(value)
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
        from mlops_lite.definition.pipeline_context import PipelineContext

        options = self.options
        trace = PipelineTrace(
            self.name,
            step_config=options.step_config,
            context=PipelineContext(
                self.name,
                options.model,
                dict(options.extra),
                dict(options.settings),
                options.enable_cache,
            ),
        )
        with tracing(trace):
            try:
                self.entrypoint(**call_parameters(self.entrypoint, parameters))
            except ValueError as error:
                explained = _explain_unpacking(error, trace, self.entrypoint)
                if explained is None:
                    raise
                raise explained from None
        if not trace.invocations:
            raise DefinitionError(f"pipeline {self.name!r} calls no step")
        for invocation in trace.invocations.values():
            hooks: dict[str, Any] = {
                kind: hook
                for kind, hook in (
                    ("on_failure", options.on_failure),
                    ("on_success", options.on_success),
                )
                if hook is not None and getattr(invocation.step.options, kind) is None
            }
            if hooks:
                invocation.step = invocation.step.with_options(**hooks)
        return trace

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the pipeline and record the run; returns the recorded run.

        Called inside another pipeline's body, it adds its steps to that pipeline
        and returns what its body returns (step outputs), as in ZenML.
        """
        if current_trace() is not None:
            parameters = self.bind_parameters(args, kwargs)
            return self.entrypoint(**call_parameters(self.entrypoint, parameters))
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
        settings: Mapping[str, Any] | None = None,
        model: Any = None,
        on_failure: Hook | None = None,
        on_success: Hook | None = None,
        **extra: Any,
    ) -> Pipeline:
        """A copy with some options changed.

        ``config_path`` (a YAML/TOML/JSON file) or ``config`` (its content) is
        loaded and checked when the pipeline is called. ZenML's ``settings`` and
        ``extra`` are recorded with the run, ``model`` is the model version it works
        on, ``on_failure`` / ``on_success`` hooks apply to every step without its own.
        """
        where = f"pipeline {self.name!r}"
        changes: dict[str, Any] = {}
        for key, value in (
            ("enable_cache", enable_cache),
            ("run_name", run_name),
            ("config_path", config_path),
            ("config", config),
            ("orchestrator", orchestrator),
            ("on_failure", check_hook(on_failure, where)),
            ("on_success", check_hook(on_success, where)),
        ):
            if value is not None:
                changes[key] = value
        if settings is not None:
            changes["settings"] = {**self.options.settings, **check_settings(settings, where)}
        if model is not None:
            from mlops_lite.definition.model import Model

            if not isinstance(model, Model):
                raise DefinitionError(f"{where}: model= takes a mlops_lite.Model, not {model!r}")
            changes["model"] = model
        user_extra = extra.pop("extra", None)
        if user_extra is not None:
            if not isinstance(user_extra, Mapping) or not is_recordable(dict(user_extra)):
                raise DefinitionError(f"{where}: extra must be a mapping of JSON-like values")
            extra = {**dict(user_extra), **extra}
        for option in extra:
            if option in NO_EFFECT_OPTIONS:
                warn_once(
                    f"pipeline-option:{option}",
                    f"{where}: {option!r} is recorded with the run but has no effect in "
                    "mlops_lite (see docs/coming-from-zenml.md)",
                )
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
    settings: Mapping[str, Any] | None = None,
    model: Any = None,
    on_failure: Hook | None = None,
    on_success: Hook | None = None,
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
