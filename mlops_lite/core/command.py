"""How to call the ``mlops-lite`` command so that a printed hint works as printed."""

from __future__ import annotations

import os
import sys
from functools import lru_cache

__all__ = ["cli_command"]


@lru_cache(maxsize=1)
def cli_command() -> str:
    """``mlops-lite`` when that name runs this installation, else ``<this python> -m mlops_lite``.

    A script run as ``.venv/bin/python train.py`` without activating the venv
    has no ``mlops-lite`` on ``PATH`` (or another installation's): the
    interpreter's own path always reaches this one.
    """
    import shlex
    import shutil

    found = shutil.which("mlops-lite")
    beside = os.path.join(os.path.dirname(sys.executable), "mlops-lite")
    if found is not None and os.path.realpath(found) == os.path.realpath(beside):
        return "mlops-lite"
    return f"{shlex.quote(sys.executable)} -m mlops_lite"
