"""Tracing a pipeline call: step calls become invocations in a graph, outputs become handles.

While a ``@pipeline`` function runs, a trace is active (a context variable): each
step call adds an ``Invocation`` and returns ``OutputHandle`` placeholders that
later step calls take as inputs.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from mlops_lite.core.names import NAME_RULE, is_valid_name
from mlops_lite.core.references import ArtifactSelector, selector_of
from mlops_lite.core.values import is_recordable
from mlops_lite.definition.parameters import recordable_parameter
from mlops_lite.errors import DefinitionError, OutputUsedAsValueError, UnrecordableParameterError

if TYPE_CHECKING:
    from mlops_lite.definition.steps import Step

__all__ = ["Invocation", "OutputHandle", "PipelineTrace", "current_trace", "tracing"]

_active_trace: contextvars.ContextVar[PipelineTrace | None] = contextvars.ContextVar(
    "mlops_lite_trace", default=None
)


def current_trace() -> PipelineTrace | None:
    """The trace of the pipeline being defined right now, if any."""
    return _active_trace.get()


class tracing:
    """``with tracing(trace):`` makes ``trace`` the active one."""

    def __init__(self, trace: PipelineTrace) -> None:
        self.trace = trace
        self._token: contextvars.Token[PipelineTrace | None] | None = None

    def __enter__(self) -> PipelineTrace:
        self._token = _active_trace.set(self.trace)
        return self.trace

    def __exit__(self, *_: object) -> None:
        assert self._token is not None
        _active_trace.reset(self._token)


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
    # Arguments receiving an existing artifact version (resolved when the run starts).
    artifacts: dict[str, ArtifactSelector] = field(default_factory=dict)


@dataclass
class PipelineTrace:
    """The graph being built while a pipeline function runs."""

    pipeline_name: str
    step_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    invocations: dict[str, Invocation] = field(default_factory=dict)
    run_metadata: dict[str, Any] = field(default_factory=dict)
    last_invocation: Invocation | None = None
    # What get_pipeline_context() returns while the body runs (a PipelineContext).
    context: Any = None

    def add_invocation(
        self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any], *, name: str | None = None
    ) -> Any:
        """Record one call of ``step``; return its output handles (None, one, or a tuple).

        As in ZenML, ``id=`` names the invocation and ``after=`` (invocation names or
        outputs) orders it after other invocations, unless the step takes arguments
        with those names.
        """
        chosen_id = kwargs.pop("id", None) if "id" not in step.signature.parameters else None
        after = kwargs.pop("after", None) if "after" not in step.signature.parameters else None
        if chosen_id is not None:
            name = self._chosen_name(chosen_id, step)
        else:
            name = self._unique_name(name or step.name)
        configured = self.step_config.get(name, {})
        if configured.get("enable_cache") is not None:
            step = step.with_options(enable_cache=configured["enable_cache"])
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise DefinitionError(
                f"step {step.name!r} called with the wrong arguments: {error}"
            ) from None
        # Call arguments win, then with_options(parameters=...), then the configuration file.
        for source in (step.options.parameters, configured.get("parameters", {})):
            for arg_name, value in source.items():
                if arg_name not in bound.arguments:
                    bound.arguments[arg_name] = value
        bound.apply_defaults()
        parameters: dict[str, Any] = {}
        inputs: dict[str, OutputHandle] = {}
        gathered: dict[str, list[OutputHandle]] = {}
        artifacts: dict[str, ArtifactSelector] = {}
        for arg_name, value in bound.arguments.items():
            selector = selector_of(value)
            if isinstance(value, OutputHandle):
                inputs[arg_name] = value
            elif selector is not None:
                artifacts[arg_name] = selector  # an input edge, never a parameter
            elif value is inspect.Parameter.empty:
                continue
            elif (
                isinstance(value, (list, tuple))
                and value
                and all(isinstance(v, OutputHandle) for v in value)
            ):
                gathered[arg_name] = list(value)  # the step receives a list of their values
            elif _contains_handle(value):
                raise DefinitionError(
                    f"step {name!r}, argument {arg_name!r}: step outputs mixed with other values "
                    "or nested in a dict are not supported; pass a list of step outputs, or each "
                    "output as its own argument"
                )
            elif not is_recordable(value := recordable_parameter(value)):
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
            | self._after(after, name)
        )
        invocation = Invocation(name, step, parameters, inputs, upstream, gathered, artifacts)
        self.invocations[name] = invocation
        self.last_invocation = invocation
        handles = tuple(OutputHandle(name, output.name) for output in step.outputs)
        if not handles:
            return None
        return handles[0] if len(handles) == 1 else handles

    def _chosen_name(self, chosen: Any, step: Step) -> str:
        if not isinstance(chosen, str) or not is_valid_name(chosen):
            raise DefinitionError(
                f"step {step.name!r}: id={chosen!r} cannot name an invocation; use {NAME_RULE}"
            )
        if chosen in self.invocations:
            raise DefinitionError(
                f"step {step.name!r}: id={chosen!r} is taken by another invocation in pipeline "
                f"{self.pipeline_name!r}; give each invocation its own id"
            )
        return chosen

    def _after(self, after: Any, name: str) -> set[str]:
        """The invocations named by ``after=`` (names, outputs, or lists of them)."""
        if after is None:
            return set()
        items = list(after) if isinstance(after, (list, tuple, set)) else [after]
        names = set()
        for item in items:
            target = item.invocation if isinstance(item, OutputHandle) else item
            if not isinstance(target, str) or target not in self.invocations:
                known = ", ".join(self.invocations) or "none yet"
                raise DefinitionError(
                    f"step {name!r}: after={item!r} names no earlier invocation of pipeline "
                    f"{self.pipeline_name!r} (invocations so far: {known})"
                )
            names.add(target)
        return names

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
