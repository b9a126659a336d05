"""The project's own settings: the ``[tool.mlops-lite]`` table of its ``pyproject.toml``."""

from __future__ import annotations

import os
from typing import Any, Final

from mlops_lite.core.shape import shape_problem
from mlops_lite.errors import ConfigError

__all__ = ["PYPROJECT", "parse_project_config", "read_project_config"]

PYPROJECT: Final = "pyproject.toml"


def read_project_config(root: str) -> dict[str, Any]:
    """The ``[tool.mlops-lite]`` table of ``root``'s ``pyproject.toml`` ({} if none)."""
    path = os.path.join(root, PYPROJECT)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    return parse_project_config(data, path)


def parse_project_config(data: bytes, path: str = PYPROJECT) -> dict[str, Any]:
    """The ``[tool.mlops-lite]`` table of a ``pyproject.toml``'s bytes; ConfigError if invalid.

    Whatever the file holds (invalid UTF-8, a ``tool`` that is not a table,
    thousands of nested arrays), the only error is a ``ConfigError``.
    """
    import tomllib  # here: most commands find no pyproject.toml, and it costs ~8 ms

    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply to read") from None
    tool = document.get("tool", {})
    table = tool.get("mlops-lite", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.mlops-lite] must be a table")
    problem = shape_problem(table)
    if problem is not None:
        raise ConfigError(f"{path}: [tool.mlops-lite] is refused: {problem}")
    return table
