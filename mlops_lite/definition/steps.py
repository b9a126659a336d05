"""``@step``: a function declared as a pipeline step, its outputs and options.

The decorator validates the signature once, at decoration time, and attaches a
frozen spec; it runs nothing. Called inside a pipeline being traced, a step
returns output handles; called anywhere else it is the plain function.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from mlops_lite.core.names import NAME_RULE, is_valid_name
from mlops_lite.core.resources import ResourceRequest, resources_in_settings
from mlops_lite.core.values import is_recordable
from mlops_lite.definition.hooks import Hook, check_hook, hook_name
from mlops_lite.definition.parameters import recordable_parameter
from mlops_lite.definition.settings import NO_EFFECT_OPTIONS, check_settings, warn_once
from mlops_lite.definition.tracing import current_trace
from mlops_lite.errors import DefinitionError, UnrecordableParameterError

if TYPE_CHECKING:
    from mlops_lite.definition.artifact_config import ArtifactConfig

__all__ = ["DEFAULT_OUTPUT", "OutputSpec", "Step", "StepOptions", "Unmapped", "step", "unmapped"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_OUTPUT = "output"


@dataclass(frozen=True)
class OutputSpec:
    """One declared output of a step: its name, annotation, and how it is versioned.

    ``named`` is true when the annotation names the output (``Annotated[T, "name"]``
    or an ``ArtifactConfig`` with a name): such an output is an artifact of that
    name, and each execution of the step a new version of it.
    """

    name: str
    annotation: Any
    named: bool = False
    config: ArtifactConfig | None = None  # the ArtifactConfig in the annotation, if any

    def artifact_name(self, pipeline: str, invocation: str) -> str | None:
        """The artifact this output versions in a run, or None when it is not versioned."""
        if self.named:
            return self.name
        if self.config is not None:  # an ArtifactConfig without a name: ZenML's default name
            return f"{pipeline}.{invocation}.{self.name}"
        return None


@dataclass(frozen=True)
class StepOptions:
    """Per-step settings; ``None`` means "inherit from the pipeline run"."""

    enable_cache: bool | None = None
    output_materializers: Mapping[str, Any] = field(default_factory=dict)
    seed: bool | None = None
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None
    # Files or folders (relative to the project root) the step reads in ways the
    # automatic tracking cannot see (subprocesses, C libraries): part of its cache key.
    data: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    # ZenML's: recorded; ``resources`` places the step (pool, Dask), the others have
    # no effect here (one warning each, see definition/settings.py).
    settings: Mapping[str, Any] = field(default_factory=dict)
    model: Any = None  # a Model: the version this step's outputs are linked to
    on_failure: Hook | None = None
    on_success: Hook | None = None
    # Default values of parameters (``with_options(parameters=...)``); call arguments win.
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def recordable(self) -> dict[str, Any]:
        """The options as recorded in the step record's ``settings``."""
        recorded = {
            "enable_cache": self.enable_cache,
            "output_materializers": {
                name: getattr(m, "name", str(m)) for name, m in self.output_materializers.items()
            },
            "seed": self.seed,
            "retries": self.retries,
            "retry_delay": self.retry_delay,
            "timeout": self.timeout,
            "data": list(self.data),
            "extra": dict(self.extra),
        }
        # Only when used: records of steps that use none of these stay as they were.
        if self.settings:
            recorded["settings"] = dict(self.settings)
        if self.model is not None:
            recorded["model"] = self.model.to_config()
        hooks = {"on_failure": hook_name(self.on_failure), "on_success": hook_name(self.on_success)}
        if any(hooks.values()):
            recorded["hooks"] = hooks
        if self.parameters:
            recorded["parameters"] = dict(self.parameters)
        return recorded

    @property
    def resources(self) -> ResourceRequest:
        """What the step asks of the worker that runs it: ``settings={"resources": {...}}``."""
        return resources_in_settings(self.settings, "step")


def _parse_outputs(
    func: Callable[..., Any], step_name: str, localns: Mapping[str, Any] | None = None
) -> tuple[OutputSpec, ...]:
    """Output names from the return annotation, ZenML's way.

    ``-> T``: one output ``output``; ``-> Annotated[T, "name"]``: one named
    output; ``-> tuple[Annotated[A, "a"], B]``: outputs ``a`` and ``output_1``;
    ``-> None``: no outputs. String annotations (``from __future__ import
    annotations``) are resolved in the function's module and, for a step defined
    inside a function, in that function's local names (``localns``).
    """
    try:
        hints = typing.get_type_hints(func, localns=dict(localns or {}), include_extras=True)
        annotation = hints.get("return", inspect.Signature.empty)
    except Exception as error:
        annotation = inspect.signature(func).return_annotation
        if isinstance(annotation, str):
            # Guessing would silently turn several outputs into one: refuse instead.
            raise DefinitionError(
                f"step {step_name!r}: its return annotation {annotation!r} cannot be resolved "
                f"({type(error).__name__}: {error}); "
                "import the names it uses where the step is defined"
            ) from None
    if annotation is inspect.Signature.empty:
        return (OutputSpec(DEFAULT_OUTPUT, Any),)
    if annotation is None or annotation is type(None):
        return ()
    if typing.get_origin(annotation) is tuple:
        members = typing.get_args(annotation)
        if members and members[-1] is not Ellipsis and members != ((),):
            specs = [
                _output_spec(member, f"output_{i}", step_name) for i, member in enumerate(members)
            ]
            names = [spec.name for spec in specs]
            if len(set(names)) != len(names):
                raise DefinitionError(
                    f"step {step_name!r}: output names must be unique, got {names}"
                )
            return tuple(specs)
    return (_output_spec(annotation, DEFAULT_OUTPUT, step_name),)


def _output_spec(annotation: Any, default_name: str, step_name: str) -> OutputSpec:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        configs = [extra for extra in extras if _is_artifact_config(extra)]
        config = configs[0] if configs else None
        names = [extra for extra in extras if isinstance(extra, str)]
        if config is not None and config.name is not None:
            names = [config.name]
        if names:
            name = names[0]
            if not is_valid_name(name):
                raise DefinitionError(
                    f"step {step_name!r}: output name {name!r} is not allowed; use {NAME_RULE}"
                )
            return OutputSpec(name, base, named=True, config=config)
        return OutputSpec(default_name, base, config=config)
    return OutputSpec(default_name, annotation)


def _is_artifact_config(value: Any) -> bool:
    # Imported only when an annotation holds something other than a name.
    if isinstance(value, str):
        return False
    from mlops_lite.definition.artifact_config import ArtifactConfig

    return isinstance(value, ArtifactConfig)


class Step:
    """A function declared with ``@step``."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        options: StepOptions | None = None,
        outputs: tuple[OutputSpec, ...] | None = None,
        localns: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(func) or not hasattr(func, "__code__"):
            raise DefinitionError(f"@step decorates functions; got {func!r}")
        self.entrypoint = func
        self.name = name or func.__name__
        self.options = options or StepOptions()
        self.signature = inspect.signature(func)
        for parameter in self.signature.parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise DefinitionError(
                    f"step {self.name!r}: *args and **kwargs cannot be recorded; "
                    "name every input and parameter"
                )
            if parameter.kind is parameter.POSITIONAL_ONLY:
                raise DefinitionError(
                    f"step {self.name!r}: positional-only parameters are not supported"
                )
        self.outputs = outputs if outputs is not None else _parse_outputs(func, self.name, localns)
        unknown = set(self.options.output_materializers) - {o.name for o in self.outputs}
        if unknown:
            raise DefinitionError(
                f"step {self.name!r}: "
                f"output_materializers names unknown outputs {sorted(unknown)}; "
                f"outputs are {[o.name for o in self.outputs]}"
            )
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Inside a pipeline: add an invocation, return output handles. Elsewhere: the function."""
        trace = current_trace()
        if trace is None:
            # Outside a pipeline a step is just its function: handy in tests and notebooks.
            return self.entrypoint(*args, **kwargs)
        return trace.add_invocation(self, args, kwargs)

    def with_options(
        self,
        *,
        enable_cache: bool | None = None,
        output_materializers: Mapping[str, Any] | Any | None = None,
        seed: bool | None = None,
        retries: int | None = None,
        retry_delay: float | None = None,
        timeout: float | None = None,
        data: str | list[str] | tuple[str, ...] | None = None,
        name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
        model: Any = None,
        on_failure: Hook | None = None,
        on_success: Hook | None = None,
        **extra: Any,
    ) -> Step:
        """A copy of this step with some options changed.

        ZenML's options work too: ``parameters`` (default values; call arguments
        win), ``settings`` and ``extra`` (recorded), ``model``, ``on_failure`` /
        ``on_success`` hooks. Other ZenML options that have no effect here
        (``experiment_tracker``, ``step_operator``, ...) are recorded, with a warning.
        """
        changes: dict[str, Any] = {}
        where = f"step {name or self.name!r}"
        if parameters is not None:
            changes["parameters"] = {**self.options.parameters, **_check_parameters(
                parameters, self.signature, where
            )}  # fmt: skip
        if settings is not None:
            checked = check_settings(settings, where, step=True)
            changes["settings"] = {**self.options.settings, **checked}
        if model is not None:
            changes["model"] = _check_model(model, where)
        if on_failure is not None:
            changes["on_failure"] = check_hook(on_failure, where)
        if on_success is not None:
            changes["on_success"] = check_hook(on_success, where)
        user_extra = extra.pop("extra", None)
        if user_extra is not None:
            if not isinstance(user_extra, Mapping):
                raise DefinitionError(f"{where}: extra must be a mapping")
            extra = {**dict(user_extra), **extra}
        for option in extra:
            if option in NO_EFFECT_OPTIONS:
                warn_once(
                    f"step-option:{option}",
                    f"{where}: {option!r} is recorded with the run but has no effect in "
                    "mlops_lite (see docs/coming-from-zenml.md)",
                )
        if enable_cache is not None:
            changes["enable_cache"] = enable_cache
        if output_materializers is not None:
            changes["output_materializers"] = _materializer_map(
                output_materializers, self.outputs, self.name
            )
        if seed is not None:
            changes["seed"] = seed
        if retries is not None:
            changes["retries"] = retries
        if retry_delay is not None:
            changes["retry_delay"] = retry_delay
        if timeout is not None:
            changes["timeout"] = timeout
        if data is not None:
            changes["data"] = _data_paths(data, self.name)
        if extra:
            changes["extra"] = {**self.options.extra, **extra}
        return Step(
            self.entrypoint,
            name=name or self.name,
            options=dataclasses.replace(self.options, **changes),
            outputs=self.outputs,
        )

    def map(self, **arguments: Any) -> list[Any]:
        """Fan out inside a pipeline: one invocation per element of the list arguments.

        ``evaluate.map(lr=[0.1, 0.2], data=dataset)`` calls ``evaluate`` once per
        learning rate (invocations ``evaluate_0``, ``evaluate_1``), each cached on
        its own and run in parallel by the ``pool`` and ``dask`` orchestrators;
        arguments that are not lists (``data``) go to every invocation, and
        ``unmapped([...])`` passes a list whole. Lists must have equal lengths.
        Returns the invocations' outputs as a list: pass it to a step to gather.
        """
        trace = current_trace()
        if trace is None:
            raise DefinitionError(
                f"{self.name}.map(...) works inside a @pipeline function; outside one, call the "
                "step in a loop"
            )
        mapped = {k: list(v) for k, v in arguments.items() if isinstance(v, (list, tuple))}
        constant = {
            k: v.value if isinstance(v, Unmapped) else v
            for k, v in arguments.items()
            if k not in mapped
        }
        if not mapped:
            raise DefinitionError(
                f"{self.name}.map(...) needs at least one argument given as a list to map over "
                "(a list known when the pipeline is defined: values or step outputs)"
            )
        lengths = {name: len(values) for name, values in mapped.items()}
        if len(set(lengths.values())) != 1:
            raise DefinitionError(
                f"{self.name}.map(...): the mapped lists differ in length: {lengths}"
            )
        count = next(iter(lengths.values()))
        return [
            trace.add_invocation(
                self,
                (),
                {**constant, **{k: v[i] for k, v in mapped.items()}},
                name=f"{self.name}_{i}",
            )
            for i in range(count)
        ]

    def __repr__(self) -> str:
        return f"<step {self.name}>"


@dataclass(frozen=True)
class Unmapped:
    """A list argument of ``Step.map`` given whole to every invocation."""

    value: Any


def unmapped(value: Any) -> Unmapped:
    """Pass ``value`` (a list) unchanged to every invocation of ``Step.map``."""
    return Unmapped(value)


def _data_paths(data: Any, step_name: str) -> tuple[str, ...]:
    paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if not all(isinstance(path, (str, os.PathLike)) for path in paths):
        raise DefinitionError(
            f"step {step_name!r}: data must be a path or a list of paths (files or folders, "
            f"relative to the project root), got {data!r}"
        )
    return tuple(os.fspath(path) for path in paths)


def _materializer_map(
    value: Any, outputs: tuple[OutputSpec, ...], step_name: str
) -> dict[str, Any]:
    # The registry loads its builtin materializers: only when a step names one.
    from mlops_lite.materializers import as_materializer

    if isinstance(value, Mapping):
        return {name: as_materializer(chosen) for name, chosen in value.items()}
    if len(outputs) != 1:
        raise DefinitionError(
            f"step {step_name!r} has {len(outputs)} outputs: give output_materializers as "
            "{output_name: materializer}"
        )
    return {outputs[0].name: as_materializer(value)}


def _check_parameters(parameters: Any, signature: inspect.Signature, where: str) -> dict[str, Any]:
    if not isinstance(parameters, Mapping):
        raise DefinitionError(f"{where}: parameters must be a mapping of name to value")
    unknown = [name for name in parameters if name not in signature.parameters]
    if unknown:
        raise DefinitionError(
            f"{where}: with_options(parameters=...) names {unknown[0]!r}, which the step does "
            f"not take; its parameters are {', '.join(signature.parameters) or '(none)'}"
        )
    recorded = {name: recordable_parameter(value) for name, value in parameters.items()}
    for name, value in recorded.items():
        if not is_recordable(value):
            raise UnrecordableParameterError(
                f"{where}, parameter {name!r}: a value of type {type(value).__qualname__} cannot "
                "be recorded; parameters must be JSON-like"
            )
    return recorded


def _check_model(model: Any, where: str) -> Any:
    from mlops_lite.definition.model import Model

    if not isinstance(model, Model):
        raise DefinitionError(f"{where}: model= takes a mlops_lite.Model, not {model!r}")
    return model


@overload
def step(func: F, /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    output_materializers: Mapping[str, Any] | Any | None = None,
    seed: bool | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    data: str | list[str] | tuple[str, ...] | None = None,
    settings: Mapping[str, Any] | None = None,
    model: Any = None,
    on_failure: Hook | None = None,
    on_success: Hook | None = None,
    **extra: Any,
) -> Callable[[F], Step]: ...


def step(func: Any = None, /, **options: Any) -> Any:
    """Declare a pipeline step: ``@step`` or ``@step(enable_cache=False, ...)``."""
    # The names where the step is defined, to resolve string annotations of a
    # step defined inside a function (its imports are local there).
    localns = sys._getframe(1).f_locals
    if func is not None:
        if options:
            raise DefinitionError("use @step or @step(...), not both")
        return Step(func, localns=localns)

    def decorate(f: Callable[..., Any]) -> Step:
        settings = dict(options)
        base = Step(f, name=settings.pop("name", None), localns=sys._getframe(1).f_locals)
        return base.with_options(**settings) if settings else base

    return decorate
