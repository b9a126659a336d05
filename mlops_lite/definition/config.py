"""Run configuration files: load them, validate them against a pipeline, apply them.

A configuration is a mapping (YAML when PyYAML is installed, TOML always, JSON)::

    run_name: "training-{date}-{time}"   # {date} {time} {pipeline} {stamp} {random}
    enable_cache: false                   # the whole run
    seed: true                            # seed random/numpy before every step
    parameters: {c: 0.5}                  # pipeline parameters
    model: {name: churn, version: production}   # the model version the run works on
    settings: {docker: {...}}             # ZenML's: recorded, no effect here (one warning)
    extra: {notify: true}                 # free-form, recorded, seen by steps
    steps:
      train:                              # an invocation name: train, train_2, ...
        parameters: {max_iter: 200}
        enable_cache: false
        seed: true

Precedence: explicit call arguments > configuration file > defaults in the
code. For settings (``enable_cache``, ``run_name``, ``seed``, ``model``) the file
wins over the decorator and ``with_options``: a file exists to change a run
without editing code. Everything is checked before anything runs — unknown
steps (after tracing, before the store is opened), values that do not match
the parameter's annotation, files nested too deeply or whose YAML aliases
multiply past a bound (``parse_config_bytes``) — so a bad configuration records
nothing. Unknown keys are ignored with a warning naming the closest known key,
as ZenML ignores them; ``MLOPS_LITE_STRICT_CONFIG=1`` makes them errors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import string
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_lite.core.names import NAME_RULE, did_you_mean, is_valid_name
from mlops_lite.core.shape import MAX_DEPTH, shape_problem
from mlops_lite.core.values import is_recordable
from mlops_lite.definition.model import Model
from mlops_lite.definition.pipelines import Pipeline
from mlops_lite.definition.settings import NO_EFFECT_OPTIONS, check_settings, warn_once
from mlops_lite.definition.tracing import PipelineTrace
from mlops_lite.definition.typecheck import matches_annotation
from mlops_lite.errors import CompatibilityWarning, ConfigError

__all__ = [
    "ConfiguredPipeline",
    "RunConfig",
    "StepConfig",
    "ZenMLOptions",
    "configure",
    "load_config_file",
    "matches_annotation",
    "parse_config",
    "parse_config_bytes",
]

_HOOK_KEYS = ("failure_hook_source", "success_hook_source")
TOP_LEVEL_KEYS = (
    "enable_cache", "extra", "model", "parameters", "run_name", "seed", "settings", "steps",
    *_HOOK_KEYS,
)  # fmt: skip
STEP_KEYS = ("enable_cache", "extra", "model", "parameters", "seed", "settings", *_HOOK_KEYS)
RUN_NAME_FIELDS = ("date", "pipeline", "random", "stamp", "time")
ENV_STRICT = "MLOPS_LITE_STRICT_CONFIG"
MAX_CONFIG_BYTES = 10 * 2**20


@dataclass(frozen=True)
class ZenMLOptions:
    """The ZenML options of a configuration level: settings, extra, model, hooks."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    model: Model | None = None
    on_failure: str | None = None
    on_success: str | None = None

    def changes(self) -> dict[str, Any]:
        """What to pass to ``with_options`` (only what was given)."""
        found: dict[str, Any] = {
            "settings": dict(self.settings) or None,
            "extra": dict(self.extra) or None,
            "model": self.model,
            "on_failure": self.on_failure,
            "on_success": self.on_success,
        }
        return {key: value for key, value in found.items() if value is not None}


@dataclass(frozen=True)
class StepConfig:
    """One step's settings from a configuration file."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    enable_cache: bool | None = None
    seed: bool | None = None
    zenml: ZenMLOptions = field(default_factory=ZenMLOptions)


@dataclass(frozen=True)
class RunConfig:
    """A validated configuration; ``content`` is what gets recorded with the run."""

    content: Mapping[str, Any]
    source: str = "configuration"
    parameters: Mapping[str, Any] = field(default_factory=dict)
    steps: Mapping[str, StepConfig] = field(default_factory=dict)
    enable_cache: bool | None = None
    run_name: str | None = None
    seed: bool | None = None
    zenml: ZenMLOptions = field(default_factory=ZenMLOptions)

    def step_config(self) -> dict[str, dict[str, Any]]:
        """The shape ``PipelineOptions.step_config`` takes (the trace applies it)."""
        return {
            name: {"parameters": dict(step.parameters), "enable_cache": step.enable_cache}
            for name, step in self.steps.items()
        }


# loading -------------------------------------------------------------------


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(
            f"configuration file {path!r} not found (relative paths start at the working "
            f"directory, {os.getcwd()})"
        )
    if os.path.getsize(path) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"configuration file {path} is larger than {MAX_CONFIG_BYTES // 2**20} MiB: "
            "a run configuration holds settings, not data"
        )
    with open(path, "rb") as f:
        data = f.read(MAX_CONFIG_BYTES + 1)
    return parse_config_bytes(data, os.path.splitext(path)[1].lower(), source=path)


def parse_config_bytes(data: bytes, extension: str, *, source: str) -> dict[str, Any]:
    """The mapping a configuration file's bytes hold, in the format ``extension`` names.

    Anything that is not a reasonable mapping — invalid syntax, nesting past
    ``MAX_DEPTH`` levels, YAML aliases multiplying into more than ``MAX_ITEMS``
    values — is a ``ConfigError``, never another exception.
    """
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"configuration file {source} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        if extension == ".toml":
            content = _load_toml(data, source)
        elif extension in (".yaml", ".yml"):
            content = _load_yaml(data, source)
        elif extension == ".json":
            try:
                content = json.loads(data)
            except ValueError as error:
                raise ConfigError(f"configuration file {source}: not valid JSON: {error}") from None
        else:
            raise ConfigError(
                f"configuration file {source}: unknown format {extension or '(no extension)'!r}; "
                "use .yaml, .yml, .toml or .json"
            )
    except RecursionError:
        raise ConfigError(
            f"configuration file {source} is nested too deeply to read (at most {MAX_DEPTH} levels)"
        ) from None
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise ConfigError(
            f"configuration file {source}: the top level must be a mapping of settings"
        )
    problem = shape_problem(content)
    if problem is not None:
        raise ConfigError(f"configuration file {source} is refused: {problem}")
    return content


def _load_toml(data: bytes, path: str) -> Any:
    import tomllib

    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"configuration file {path}: not valid TOML: {error}") from None


def _load_yaml(data: bytes, path: str) -> Any:
    try:
        import yaml
    except ModuleNotFoundError:
        raise ConfigError(
            f"configuration file {path}: reading YAML needs PyYAML (pip install pyyaml), or write "
            "the configuration as TOML"
        ) from None
    try:
        # safe_load builds no objects from tags; aliases stay shared objects,
        # measured by shape_problem before anything walks them.
        return yaml.safe_load(data)
    except (yaml.YAMLError, ValueError, TypeError) as error:
        raise ConfigError(f"configuration file {path}: not valid YAML: {error}") from None


# validating the shape ---------------------------------------------------------


def parse_config(content: Mapping[str, Any], *, source: str = "configuration") -> RunConfig:
    """Check the keys and value kinds of a configuration (no pipeline needed)."""
    if not isinstance(content, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping of settings")
    _check_keys(content, TOP_LEVEL_KEYS, source, "")
    content = _plain(content)
    if not is_recordable(content):
        raise ConfigError(
            f"{source}: holds a value that cannot be recorded with the run (dates and times are "
            "not supported); write it as a string or number"
        )
    steps: dict[str, StepConfig] = {}
    for step_name, step_content in _mapping(content.get("steps"), source, "steps").items():
        where = f"steps.{step_name}"
        step_map = _mapping(step_content, source, where)
        _check_keys(step_map, STEP_KEYS, source, where + ".")
        steps[str(step_name)] = StepConfig(
            parameters=_mapping(step_map.get("parameters"), source, where + ".parameters"),
            enable_cache=_flag(step_map.get("enable_cache"), source, where + ".enable_cache"),
            seed=_flag(step_map.get("seed"), source, where + ".seed"),
            zenml=_zenml_options(step_map, source, where + "."),
        )
    run_name = content.get("run_name")
    if run_name is not None:
        _check_run_name(run_name, source)
    return RunConfig(
        content=content,
        source=source,
        parameters=_mapping(content.get("parameters"), source, "parameters"),
        steps=steps,
        enable_cache=_flag(content.get("enable_cache"), source, "enable_cache"),
        run_name=run_name,
        seed=_flag(content.get("seed"), source, "seed"),
        zenml=_zenml_options(content, source, ""),
    )


def _zenml_options(content: Mapping[str, Any], source: str, prefix: str) -> ZenMLOptions:
    where = f"{source}: {prefix}"
    extra = _mapping(content.get("extra"), source, prefix + "extra")
    settings = _mapping(content.get("settings"), source, prefix + "settings")
    model = content.get("model")
    hooks = {}
    for key in _HOOK_KEYS:
        hook = content.get(key)
        if hook is not None and not (isinstance(hook, str) and "." in hook):
            raise ConfigError(
                f"{where}{key} must be a 'module.function' path, got {_kind(hook)} {hook!r}"
            )
        hooks[key] = hook
    return ZenMLOptions(
        settings=check_settings(
            settings, source.removeprefix("configuration file "), step=bool(prefix)
        ),
        extra=extra,
        model=None if model is None else Model.from_config(model, source=f"{where}model"),
        on_failure=hooks["failure_hook_source"],
        on_success=hooks["success_hook_source"],
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _check_keys(
    content: Mapping[str, Any], known: tuple[str, ...], source: str, prefix: str
) -> None:
    """Unknown keys: a warning (ZenML ignores them), an error with ``MLOPS_LITE_STRICT_CONFIG=1``.

    ZenML keys that mean nothing here are recorded with one warning each.
    """
    strict = os.environ.get(ENV_STRICT, "") not in ("", "0")
    for key in content:
        if key in known:
            continue
        if key in NO_EFFECT_OPTIONS:
            warn_once(
                f"config:{prefix}{key}",
                f"{source}: {prefix}{key} is recorded with the run but has no effect in "
                "mlops_lite (see docs/coming-from-zenml.md)",
                stacklevel=4,
            )
            continue
        message = (
            f"{source}: unknown key {prefix}{key!r}; {did_you_mean(str(key), known)}"
            "the keys allowed here are "
            f"{', '.join(known)}"
        )
        if strict:
            raise ConfigError(f"{message} ({ENV_STRICT} is set)")
        warnings.warn(
            f"{message}. It is ignored, as ZenML ignores unknown keys; set {ENV_STRICT}=1 to "
            "make this an error",
            CompatibilityWarning,
            stacklevel=4,
        )


def _mapping(value: Any, source: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{source}: {where} must be a mapping of names to values, got {_kind(value)}"
        )
    return {str(key): item for key, item in value.items()}


def _flag(value: Any, source: str, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"{source}: {where} must be true or false, got {_kind(value)} {value!r}")


def _check_run_name(template: Any, source: str) -> None:
    if not isinstance(template, str) or not template:
        raise ConfigError(f"{source}: run_name must be a non-empty string, got {_kind(template)}")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ConfigError(
            f"{source}: run_name {template!r} is not a valid template: {error}"
        ) from None
    unknown = [name for name in fields if name not in RUN_NAME_FIELDS]
    if unknown:
        raise ConfigError(
            f"{source}: run_name {template!r} uses {{{unknown[0]}}}; the placeholders are "
            + ", ".join(f"{{{name}}}" for name in RUN_NAME_FIELDS)
        )
    sample = template.format(
        date="2026_01_01",
        time="00_00_00_000000",
        pipeline="p",
        stamp="20260101-000000-000000",
        random="abcd",
    )
    if not is_valid_name(sample):
        raise ConfigError(
            f"{source}: run_name {template!r} gives names like {sample!r}, "
            f"which cannot be part of a git ref; use {NAME_RULE}"
        )


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


# applying to a pipeline ------------------------------------------------------------


class ConfiguredPipeline(Pipeline):
    """A pipeline with a configuration resolved: fills parameters, checks steps, seeds."""

    def __init__(self, base: Pipeline, run_config: RunConfig) -> None:
        options = dataclasses.replace(
            base.with_options(**run_config.zenml.changes()).options,
            config=run_config.content,
            step_config=run_config.step_config(),
            enable_cache=base.options.enable_cache
            if run_config.enable_cache is None
            else run_config.enable_cache,
            run_name=run_config.run_name or base.options.run_name,
        )
        super().__init__(base.entrypoint, name=base.name, options=options)
        self.run_config = run_config

    def bind_parameters(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments, with the configuration's parameters where the call gives none."""
        try:
            explicit = self.signature.bind_partial(*args, **kwargs).arguments
        except TypeError:
            return super().bind_parameters(args, kwargs)  # raises the usual DefinitionError
        merged = dict(kwargs)
        for name, value in self.run_config.parameters.items():
            if name not in explicit:
                merged[name] = value
        return super().bind_parameters(args, merged)

    def trace(self, parameters: Mapping[str, Any]) -> PipelineTrace:
        """Trace the pipeline, check the configured steps exist, and apply their seeds."""
        trace = super().trace(parameters)
        _check_steps(self.run_config, trace)
        for name, invocation in trace.invocations.items():
            step = invocation.step
            configured = self.run_config.steps.get(name)
            seed = (
                configured.seed if configured is not None and configured.seed is not None else None
            )
            if seed is None:
                seed = step.options.seed if step.options.seed is not None else self.run_config.seed
            if seed is not None and seed != step.options.seed:
                step = step.with_options(seed=seed)
            if configured is not None and configured.zenml.changes():
                step = step.with_options(**configured.zenml.changes())
            invocation.step = step
        return trace


def configure(pipeline: Pipeline, content: Mapping[str, Any] | None = None) -> Pipeline:
    """``pipeline`` with its configuration loaded, checked against its parameters and applied.

    The configuration is ``content``, else the file at ``options.config_path``, else
    ``options.config``.
    """
    if isinstance(pipeline, ConfiguredPipeline) and content is None:
        return pipeline
    source = "configuration"
    if content is None:
        if pipeline.options.config_path is not None:
            source = f"configuration file {pipeline.options.config_path}"
            content = load_config_file(pipeline.options.config_path)
        else:
            content = pipeline.options.config
    run_config = parse_config(content, source=source)
    _check_pipeline_parameters(run_config, pipeline)
    return ConfiguredPipeline(pipeline, run_config)


def _check_pipeline_parameters(run_config: RunConfig, pipeline: Pipeline) -> None:
    parameters = pipeline.signature.parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    hints = _hints(pipeline.entrypoint)
    for name, value in run_config.parameters.items():
        if name not in parameters and not takes_any:
            raise ConfigError(
                f"{run_config.source}: parameters.{name}: "
                f"pipeline {pipeline.name!r} has no parameter {name!r}; "
                f"{_choices('its parameters are', list(parameters), name)}"
            )
        _check_value(
            value,
            hints.get(name),
            f"{run_config.source}: parameters.{name}",
            f"pipeline {pipeline.name!r}",
        )


def _check_steps(run_config: RunConfig, trace: PipelineTrace) -> None:
    """Configured steps exist, their parameters exist, are not inputs, and type-check."""
    for step_name, configured in run_config.steps.items():
        invocation = trace.invocations.get(step_name)
        if invocation is None:
            raise ConfigError(
                f"{run_config.source}: steps.{step_name}: "
                f"pipeline {trace.pipeline_name!r} has no step {step_name!r}; "
                f"{_choices('its steps are', list(trace.invocations), step_name)}"
            )
        signature = invocation.step.signature.parameters
        hints = _hints(invocation.step.entrypoint)
        for name, value in configured.parameters.items():
            where = f"{run_config.source}: steps.{step_name}.parameters.{name}"
            if name not in signature:
                raise ConfigError(
                    f"{where}: step {step_name!r} has no parameter {name!r}; "
                    f"{_choices('its parameters are', list(signature), name)}"
                )
            handles = (
                [invocation.inputs[name]]
                if name in invocation.inputs
                else invocation.gathered.get(name, [])
            )
            if handles:
                raise ConfigError(
                    f"{where}: {name!r} receives output {handles[0].output!r} of step "
                    f"{handles[0].invocation!r} in the pipeline, so it is an input, "
                    "not a parameter; remove it from the configuration"
                )
            _check_value(value, hints.get(name), where, f"step {step_name!r}")


def _choices(label: str, names: list[str], wrong: str) -> str:
    return f"{did_you_mean(wrong, names)}{label} {', '.join(names) or '(none)'}"


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:
        # Annotations naming types only imported under TYPE_CHECKING: check nothing.
        return {}


def _check_value(value: Any, annotation: Any, where: str, owner: str) -> None:
    if annotation is None or matches_annotation(value, annotation):
        return
    raise ConfigError(
        f"{where}: {owner} declares {_describe(annotation)}, but the configuration gives "
        f"{_kind(value)} {value!r}; change the value to match the annotation"
    )


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
