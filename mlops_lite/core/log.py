"""``logger = LazyLogger(__name__)``: a module's logger, with `logging` imported on first use.

`logging` and the dozen modules it imports (traceback, tokenize, weakref,
threading...) cost a command about 5 ms of its start, and the store's modules
log only when something is off (an unreadable archive, an index rebuilt). The
logger is `logging.getLogger(name)` at the moment of the call, so handlers,
levels and pytest's ``caplog`` apply as to any logger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

__all__ = ["LazyLogger"]


class LazyLogger:
    """The logging methods of ``logging.getLogger(name)``, without importing `logging` early."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def debug(self, message: str, *args: object) -> None:
        """As ``logging.Logger.debug``."""
        _logger(self.name).debug(message, *args, stacklevel=2)

    def info(self, message: str, *args: object) -> None:
        """As ``logging.Logger.info``."""
        _logger(self.name).info(message, *args, stacklevel=2)

    def warning(self, message: str, *args: object) -> None:
        """As ``logging.Logger.warning``."""
        _logger(self.name).warning(message, *args, stacklevel=2)


def _logger(name: str) -> logging.Logger:
    import logging

    return logging.getLogger(name)
