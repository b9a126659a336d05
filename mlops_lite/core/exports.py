"""Package exports imported on first use (PEP 562): importing a package stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

__all__ = ["load_export"]


def load_export(namespace: dict[str, Any], exports: Mapping[str, str], name: str) -> Any:
    """The package's ``name``, imported from the module ``exports`` maps it to; kept after.

    ``namespace`` is the package's ``globals()``: the value is stored there, so
    later look-ups never come back here. A name mapped to its own submodule
    (``errors`` to ``mlops_lite.errors``) is that module. ``AttributeError``
    for a name the package does not export.
    """
    package = namespace["__name__"]
    module_name = exports.get(name)
    if module_name is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"{package}.{name}" else getattr(module, name)
    namespace[name] = value
    return value
