"""The environment a run executed in: interpreter, platform, installed packages."""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["capture_environment", "environment_differences"]


@lru_cache(maxsize=1)
def capture_environment() -> dict[str, Any]:
    """Interpreter, platform and package versions, read once per process.

    Package versions come from the names of ``*.dist-info`` folders on
    ``sys.path``: one directory listing per path entry, where ``pip freeze`` or
    reading every METADATA file costs a subprocess or hundreds of file reads.
    """
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": socket.gethostname(),
        "packages": _installed_packages(),
    }


def _installed_packages(paths: list[str] | None = None) -> dict[str, str]:
    """``{distribution: version}`` of every package on ``paths`` (``sys.path``), the first winning.

    An ``.egg-info`` folder without a version in its name is a source checkout's
    build metadata (an editable install leaves ``mlops_lite.egg-info`` beside the
    code): its version is read from its ``PKG-INFO``, and it is skipped when it
    has none, so the installed ``.dist-info`` further down the path is found.
    """
    packages: dict[str, str] = {}
    for entry in sys.path if paths is None else paths:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                project, _, version = name[: -len(".dist-info")].partition("-")
            elif name.endswith(".egg-info"):
                project, _, rest = name[: -len(".egg-info")].partition("-")
                version = rest.split("-py")[0] or _pkg_info_version(os.path.join(entry, name))
            else:
                continue
            if version:
                # The first on sys.path is the one imported.
                packages.setdefault(project.lower().replace("_", "-"), version)
    return dict(sorted(packages.items()))


def _pkg_info_version(egg_info: str) -> str:
    """The ``Version:`` header of an ``.egg-info`` folder's ``PKG-INFO``; "" when unreadable."""
    try:
        with open(os.path.join(egg_info, "PKG-INFO"), encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.partition(":")[2].strip()
                if not line.strip():
                    break  # the headers end at the first blank line
    except OSError:
        pass
    return ""


def environment_differences(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    reference_as: str = "made the run",
    current_as: str = "here",
    missing_packages: bool = True,
) -> list[str]:
    """How ``current`` differs from ``reference``: Python, and the packages ``reference`` lists.

    ``missing_packages=False`` compares only packages installed in both: a Dask
    worker need not have the driver's notebook and test tools.
    """
    differences = []
    for key, label in (("implementation", "Python implementation"), ("python", "Python")):
        if reference.get(key) and reference.get(key) != current.get(key):
            differences.append(
                f"{label} {reference[key]} {reference_as}; {current.get(key)} {current_as}"
            )
    now = current.get("packages", {})
    for name, version in sorted(reference.get("packages", {}).items()):
        if now.get(name) == version or (name not in now and not missing_packages):
            continue
        differences.append(
            f"package {name}: {version} {reference_as}; "
            f"{now.get(name) or 'not installed'} {current_as}"
        )
    return differences
