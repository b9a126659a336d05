"""``get_logger(__name__)``: a logger that prints INFO to the console, as ZenML's does.

Inside a running step, what it prints also lands in the step's logs: its handler
writes to whatever ``sys.stdout`` is at that moment, and the step's stdout is
captured. The level comes from ``MLOPS_LITE_LOGGING_VERBOSITY`` (default ``INFO``).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

__all__ = ["ENV_VERBOSITY", "get_logger"]

ENV_VERBOSITY = "MLOPS_LITE_LOGGING_VERBOSITY"


class _CurrentStdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A console handler bound to ``sys.stdout`` as it is when a record is emitted."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current ``sys.stdout``."""


def _level() -> int:
    name = os.environ.get(ENV_VERBOSITY, "INFO").upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


def get_logger(logger_name: str) -> logging.Logger:
    """A logger that shows INFO and above on stdout (and in the running step's logs)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(handler, _CurrentStdoutHandler) for handler in logger.handlers):
        handler = _CurrentStdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        # The console line is captured with the step's stdout; propagating as well
        # would record it twice.
        logger.propagate = False
    logger.setLevel(_level())
    return logger
