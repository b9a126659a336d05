"""Stacks: named orchestrator settings in ``pyproject.toml``, and choosing the orchestrator.

::

    [tool.mlops-lite]
    active_stack = "fast"

    [tool.mlops-lite.stacks.fast]
    orchestrator = "pool"
    workers = 2

The active stack is ``MLOPS_LITE_STACK``, else ``active_stack``, else ``default``
(the builtin ``local`` stack). The orchestrator of a run is
``MLOPS_LITE_ORCHESTRATOR``, else the pipeline's ``orchestrator=`` option, else
the active stack's. Writing edits only the ``[tool.mlops-lite]`` tables, as
text, so the rest of the file keeps its comments and layout; the result is
parsed back and refused unless it reads as intended.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_lite.core.names import is_valid_name
from mlops_lite.errors import ConfigError
from mlops_lite.execution.orchestrators import ORCHESTRATOR_SETTINGS
from mlops_lite.store.project_config import PYPROJECT, read_project_config

__all__ = [
    "DEFAULT_STACK",
    "ENV_ORCHESTRATOR",
    "ENV_STACK",
    "PYPROJECT",
    "OrchestratorChoice",
    "Stack",
    "active_stack",
    "active_stack_name",
    "choose_orchestrator",
    "get_stack",
    "list_stacks",
    "register_stack",
    "set_active_stack",
    "stacks_of",
]

DEFAULT_STACK = "default"
ENV_STACK = "MLOPS_LITE_STACK"
ENV_ORCHESTRATOR = "MLOPS_LITE_ORCHESTRATOR"

_KNOWN_SETTINGS = sorted({key for keys in ORCHESTRATOR_SETTINGS.values() for key in keys})


@dataclass(frozen=True)
class Stack:
    """A named set of component settings; only the orchestrator for now."""

    name: str
    orchestrator: str = "local"
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The stack as JSON-ready data."""
        return {
            "name": self.name,
            "orchestrator": self.orchestrator,
            "settings": dict(self.settings),
        }


@dataclass(frozen=True)
class OrchestratorChoice:
    """What a run uses, and why: recorded with the run."""

    stack: str
    orchestrator: str
    settings: Mapping[str, Any]
    source: str  # "environment", "pipeline" or "stack"


def _validate_stack(name: str, table: Mapping[str, Any]) -> Stack:
    """Check a ``[tool.mlops-lite.stacks.<name>]`` table; the stack it describes."""
    where = f"stack {name!r} ([tool.mlops-lite.stacks.{name}] in {PYPROJECT})"
    if not is_valid_name(name, dots=False):
        raise ConfigError(f"stack name {name!r} is not allowed: use letters, digits, '_' and '-'")
    orchestrator = table.get("orchestrator", "local")
    if not isinstance(orchestrator, str) or orchestrator not in ORCHESTRATOR_SETTINGS:
        raise ConfigError(
            f"{where}: unknown orchestrator {orchestrator!r}; choose one of "
            f"{', '.join(ORCHESTRATOR_SETTINGS)}"
        )
    settings = {key: value for key, value in table.items() if key != "orchestrator"}
    unknown = sorted(set(settings) - set(_KNOWN_SETTINGS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known settings are "
            f"{', '.join(_KNOWN_SETTINGS)}"
        )
    return Stack(name, orchestrator, settings)


def list_stacks(root: str) -> dict[str, Stack]:
    """Every stack: the builtin ``default`` and those of the project, by name."""
    return stacks_of(read_project_config(root))


def stacks_of(config: Mapping[str, Any]) -> dict[str, Stack]:
    """The stacks a ``[tool.mlops-lite]`` table declares, checked, and the builtin ``default``."""
    stacks = {DEFAULT_STACK: Stack(DEFAULT_STACK)}
    tables = config.get("stacks", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{PYPROJECT}: tool.mlops-lite.stacks must be a table of stacks")
    for name, table in sorted(tables.items()):
        if not isinstance(table, dict):
            raise ConfigError(f"{PYPROJECT}: tool.mlops-lite.stacks.{name} must be a table")
        stacks[name] = _validate_stack(name, table)
    return stacks


def active_stack_name(root: str) -> tuple[str, str]:
    """``(name, where it came from)``: the environment, the project, or the default."""
    from_env = os.environ.get(ENV_STACK)
    if from_env:
        return from_env, f"environment variable {ENV_STACK}"
    configured = read_project_config(root).get("active_stack")
    if configured:
        return str(configured), f"active_stack in {PYPROJECT}"
    return DEFAULT_STACK, "default"


def get_stack(root: str, name: str) -> Stack:
    """The stack called ``name``; ConfigError listing the known ones otherwise."""
    stacks = list_stacks(root)
    if name not in stacks:
        raise ConfigError(
            f"no stack named {name!r}; known stacks: {', '.join(stacks)}. Register it with "
            f"`mlops-lite stack register {name} --orchestrator pool`"
        )
    return stacks[name]


def active_stack(root: str) -> Stack:
    """The active stack (see ``active_stack_name``)."""
    name, source = active_stack_name(root)
    try:
        return get_stack(root, name)
    except ConfigError as error:
        raise ConfigError(f"the active stack (from {source}) is unusable: {error}") from error


def choose_orchestrator(
    root: str, pipeline_orchestrator: str | None, pipeline_settings: Mapping[str, Any]
) -> OrchestratorChoice:
    """The orchestrator and its settings for a run, from env, pipeline options and stack."""
    stack = active_stack(root)
    from_env = os.environ.get(ENV_ORCHESTRATOR)
    if from_env:
        name, source = from_env, "environment"
    elif pipeline_orchestrator:
        name, source = pipeline_orchestrator, "pipeline"
    else:
        name, source = stack.orchestrator, "stack"
    if name not in ORCHESTRATOR_SETTINGS:
        where = {"environment": f"{ENV_ORCHESTRATOR}", "pipeline": "the pipeline's options"}.get(
            source, f"stack {stack.name!r}"
        )
        raise ConfigError(
            f"unknown orchestrator {name!r} (from {where}); choose one of "
            f"{', '.join(ORCHESTRATOR_SETTINGS)}"
        )
    settings: dict[str, Any] = {}
    # A stack's settings configure its own orchestrator only.
    if stack.orchestrator == name:
        settings.update(stack.settings)
    settings.update(
        {k: v for k, v in pipeline_settings.items() if k in ORCHESTRATOR_SETTINGS[name]}
    )
    return OrchestratorChoice(stack.name, name, settings, source)


# -- writing pyproject.toml ---------------------------------------------------


def register_stack(root: str, stack: Stack) -> str:
    """Add or replace ``[tool.mlops-lite.stacks.<name>]``; return the file written."""
    if stack.name == DEFAULT_STACK:
        raise ConfigError(f"{DEFAULT_STACK!r} is the builtin local stack; choose another name")
    validated = _validate_stack(stack.name, {"orchestrator": stack.orchestrator, **stack.settings})
    body = [f"orchestrator = {_toml_value(validated.orchestrator)}\n"]
    body += [f"{key} = {_toml_value(value)}\n" for key, value in sorted(validated.settings.items())]
    header = re.compile(
        r'^\s*\[\s*tool\s*\.\s*(mlops-lite|"mlops-lite")\s*\.\s*stacks\s*\.\s*'
        rf'({re.escape(stack.name)}|"{re.escape(stack.name)}")\s*\]\s*(#.*)?$'
    )

    def expected(config: dict[str, Any]) -> bool:
        table = config.get("stacks", {}).get(stack.name)
        return bool(table == {"orchestrator": validated.orchestrator, **validated.settings})

    return _edit(root, header, f"[tool.mlops-lite.stacks.{stack.name}]\n", body, None, expected)


def set_active_stack(root: str, name: str) -> str:
    """Write ``active_stack = "<name>"`` under ``[tool.mlops-lite]``; return the file written."""
    get_stack(root, name)
    header = re.compile(r'^\s*\[\s*tool\s*\.\s*(mlops-lite|"mlops-lite")\s*\]\s*(#.*)?$')
    line = f"active_stack = {_toml_value(name)}\n"
    return _edit(
        root,
        header,
        "[tool.mlops-lite]\n",
        [line],
        "active_stack",
        lambda config: config.get("active_stack") == name,
    )


def _edit(
    root: str,
    header: re.Pattern[str],
    new_header: str,
    body: list[str],
    only_key: str | None,
    expected: Any,
) -> str:
    """Replace a table's body (or one key in it), or append the table; check; write."""
    path = os.path.join(root, PYPROJECT)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
    except FileNotFoundError:
        lines = []
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start = next((i for i, text in enumerate(lines) if header.match(text)), None)
    if start is None:
        # A parent table reads best above its sub-tables ([tool.mlops-lite.stacks.*]).
        child = re.compile(r'^\s*\[\s*tool\s*\.\s*(mlops-lite|"mlops-lite")\s*\.')
        first_child = (
            None
            if only_key is None
            else next((i for i, text in enumerate(lines) if child.match(text)), None)
        )
        if first_child is not None:
            lines[first_child:first_child] = [new_header, *body, "\n"]
        else:
            lines += ["\n"] if lines and lines[-1].strip() else []
            lines += [new_header, *body]
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
            len(lines),
        )
        if only_key is None:
            while end > start + 1 and not lines[end - 1].strip():
                end -= 1  # keep the blank lines before the next table
            lines[start + 1 : end] = body
        else:
            key = re.compile(rf"^\s*{re.escape(only_key)}\s*=")
            found = next((i for i in range(start + 1, end) if key.match(lines[i])), None)
            if found is None:
                lines[start + 1 : start + 1] = body
            else:
                lines[found : found + 1] = body
    text = "".join(lines)
    try:
        config = tomllib.loads(text).get("tool", {}).get("mlops-lite", {})
        ok = bool(expected(config))
    except (tomllib.TOMLDecodeError, AttributeError):
        ok = False
    if not ok:
        raise ConfigError(
            f"could not update {path} automatically (its [tool.mlops-lite] tables are written in "
            f"a form this editor does not handle); add this by hand:\n{new_header}{''.join(body)}"
        )
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(prefix=".pyproject.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        if os.path.exists(path):
            os.chmod(temporary, os.stat(path).st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(
            value, ensure_ascii=False
        )  # JSON string escapes are valid TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise ConfigError(f"cannot write a value of type {type(value).__qualname__} to {PYPROJECT}")
