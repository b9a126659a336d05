"""The project's own settings: the ``[tool.mlops-lite]`` table of its ``pyproject.toml``."""

from __future__ import annotations

import os
import tomllib
from typing import Any, Final

from mlops_lite.errors import ConfigError

__all__ = ["PYPROJECT", "read_project_config"]

PYPROJECT: Final = "pyproject.toml"


def read_project_config(root: str) -> dict[str, Any]:
    """The ``[tool.mlops-lite]`` table of ``root``'s ``pyproject.toml`` ({} if none)."""
    path = os.path.join(root, PYPROJECT)
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from error
    table = document.get("tool", {}).get("mlops-lite", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.mlops-lite] must be a table")
    return table
