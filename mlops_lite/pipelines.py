"""``@pipeline``: tracing a pipeline function into a graph of step invocations.

Calling a pipeline binds its parameters, calls the function with a trace
active (each step call adds an invocation and returns output handles), and
hands the graph to the execution layer.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, overload

from mlops_lite.errors import (
    DefinitionError,
    OutputUsedAsValueError,
    UnrecordableParameterError,
)
from mlops_lite.records import is_recordable
from mlops_lite.steps import Step

if TYPE_CHECKING:
    from mlops_lite.client import Run

F = TypeVar("F", bound=Callable[..., Any])

# Pipeline names become one component of a git ref: refs/mlops/runs/<pipeline>/<run>.
_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")

_active_trace: contextvars.ContextVar[PipelineTrace | None] = contextvars.ContextVar(
    "mlops_lite_trace", default=None
)


def current_trace() -> PipelineTrace | None:
    return _active_trace.get()


class OutputHandle:
    """A step output while the pipeline is being defined: pass it to other steps."""

    __slots__ = ("invocation", "output")

    def __init__(self, invocation: str, output: str) -> None:
        self.invocation = invocation
        self.output = output

    def __repr__(self) -> str:
        return f"<output {self.output!r} of step {self.invocation!r}>"

    def _misuse(self, *_: Any, **__: Any) -> NoReturn:
        raise OutputUsedAsValueError(
            f"output {self.output!r} of step {self.invocation!r} has no value yet: inside a "
            "@pipeline function, step outputs are placeholders. Pass it to another step as an "
            "argument and use the value inside that step."
        )

    def __iter__(self) -> Iterator[Any]:
        raise DefinitionError(
            f"step {self.invocation!r} has a single output ({self.output!r}), so it cannot be "
            "unpacked; declare several outputs with -> tuple[Annotated[T, 'a'], Annotated[U, 'b']]"
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._misuse()

    __bool__ = __len__ = __int__ = __float__ = __index__ = __complex__ = _misuse
    __getitem__ = __setitem__ = __contains__ = __call__ = _misuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _misuse
    __truediv__ = __rtruediv__ = __floordiv__ = __mod__ = __pow__ = __neg__ = _misuse
    __lt__ = __le__ = __gt__ = __ge__ = _misuse
    __str__ = __format__ = _misuse
    __hash__ = object.__hash__


@dataclass
class Invocation:
    """One call of a step inside a pipeline."""

    name: str
    step: Step
    parameters: dict[str, Any]
    inputs: dict[str, OutputHandle]
    upstream: list[str] = field(default_factory=list)
    # Arguments receiving a list of step outputs (a gather, e.g. after Step.map).
    gathered: dict[str, list[OutputHandle]] = field(default_factory=dict)


@dataclass
class PipelineTrace:
    """The graph being built while a pipeline function runs."""

    pipeline_name: str
    step_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    invocations: dict[str, Invocation] = field(default_factory=dict)
    run_metadata: dict[str, Any] = field(default_factory=dict)
    last_invocation: Invocation | None = None

    def add_invocation(
        self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any], *, name: str | None = None
    ) -> Any:
        name = self._unique_name(name or step.name)
        configured = self.step_config.get(name, {})
        if configured.get("enable_cache") is not None:
            step = step.with_options(enable_cache=configured["enable_cache"])
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise DefinitionError(f"step {step.name!r} called with the wrong arguments: {error}") from None
        for arg_name, value in configured.get("parameters", {}).items():
            if arg_name not in bound.arguments:
                bound.arguments[arg_name] = value
        bound.apply_defaults()
        parameters: dict[str, Any] = {}
        inputs: dict[str, OutputHandle] = {}
        gathered: dict[str, list[OutputHandle]] = {}
        for arg_name, value in bound.arguments.items():
            if isinstance(value, OutputHandle):
                inputs[arg_name] = value
            elif value is inspect.Parameter.empty:
                continue
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, OutputHandle) for v in value):
                gathered[arg_name] = list(value)  # the step receives a list of their values
            elif _contains_handle(value):
                raise DefinitionError(
                    f"step {name!r}, argument {arg_name!r}: step outputs mixed with other values "
                    "or nested in a dict are not supported; pass a list of step outputs, or each "
                    "output as its own argument"
                )
            elif not is_recordable(value):
                raise UnrecordableParameterError(
                    f"step {name!r}, parameter {arg_name!r}: a value of type "
                    f"{type(value).__qualname__} cannot be recorded in the run. Parameters must be "
                    "JSON-like (None, bool, int, float, str, bytes, and lists, tuples and dicts of "
                    "them); produce other values in a step and pass its output instead"
                )
            else:
                parameters[arg_name] = value
        upstream = sorted(
            {handle.invocation for handle in inputs.values()}
            | {handle.invocation for handles in gathered.values() for handle in handles}
        )
        invocation = Invocation(name, step, parameters, inputs, upstream, gathered)
        self.invocations[name] = invocation
        self.last_invocation = invocation
        handles = tuple(OutputHandle(name, output.name) for output in step.outputs)
        if not handles:
            return None
        return handles[0] if len(handles) == 1 else handles

    def _unique_name(self, base: str) -> str:
        if base not in self.invocations:
            return base
        number = 2
        while f"{base}_{number}" in self.invocations:
            number += 1
        return f"{base}_{number}"


def _contains_handle(value: Any) -> bool:
    if isinstance(value, OutputHandle):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_contains_handle(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_handle(v) for v in value.values())
    return False


@dataclass(frozen=True)
class PipelineOptions:
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

    def __init__(self, func: Callable[..., Any], *, name: str | None = None, options: PipelineOptions | None = None) -> None:
        self.entrypoint = func
        self.name = name or func.__name__
        if not _PIPELINE_NAME.match(self.name):
            raise DefinitionError(
                f"pipeline name {self.name!r} is not allowed: use letters, digits, '_' and '-'"
            )
        self.options = options or PipelineOptions()
        self.signature = inspect.signature(func)
        functools.update_wrapper(self, func)

    def bind_parameters(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise DefinitionError(f"pipeline {self.name!r} called with the wrong arguments: {error}") from None
        bound.apply_defaults()
        for arg_name, value in bound.arguments.items():
            if not is_recordable(value):
                raise UnrecordableParameterError(
                    f"pipeline {self.name!r}, parameter {arg_name!r}: a value of type "
                    f"{type(value).__qualname__} cannot be recorded in the run; pipeline parameters "
                    "must be JSON-like (None, bool, int, float, str, bytes, lists, tuples, dicts)"
                )
        return dict(bound.arguments)

    def trace(self, parameters: Mapping[str, Any]) -> PipelineTrace:
        """Run the pipeline function with a trace active; return the graph it built."""
        trace = PipelineTrace(self.name, step_config=self.options.step_config)
        token = _active_trace.set(trace)
        try:
            self.entrypoint(**parameters)
        except ValueError as error:
            explained = _explain_unpacking(error, trace, self.entrypoint)
            if explained is None:
                raise
            raise explained from None
        finally:
            _active_trace.reset(token)
        if not trace.invocations:
            raise DefinitionError(f"pipeline {self.name!r} calls no step")
        return trace

    def __call__(self, *args: Any, **kwargs: Any) -> Run:
        if current_trace() is not None:
            raise DefinitionError(f"pipeline {self.name!r} was called inside another pipeline")
        # Running is the execution layer's job; imported here so that defining
        # pipelines never loads it.
        from mlops_lite.client import Client, Run
        from mlops_lite.execution import run_pipeline

        pipeline = self
        if self.options.config_path is not None or self.options.config:
            from mlops_lite.config import configure

            # Load and check the configuration before anything runs or is recorded.
            pipeline = configure(self)
        result = run_pipeline(pipeline, args, kwargs)
        return Run(Client(result.root), result.sha)

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
        """A copy with some options changed; ``config_path`` (a YAML/TOML/JSON file) or
        ``config`` (its content) is loaded and checked when the pipeline is called."""
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
        return Pipeline(self.entrypoint, name=self.name, options=dataclasses.replace(self.options, **changes))

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
