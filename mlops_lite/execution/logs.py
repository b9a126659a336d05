"""Capturing a step's stdout, stderr and logging records while still showing them."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from mlops_lite.core.secrets import scrub_text

__all__ = ["capture_logs"]


class _LogBuffer(io.StringIO):
    """The step's log text, also appended to a file others can follow while the step runs."""

    def __init__(self, live_log: str | None) -> None:
        super().__init__()
        # Opened at the first write: creating a file costs more than a silent step.
        self._live_path = live_log
        self._live: int | None = None

    def write(self, text: str) -> int:
        written = super().write(text)
        if self._live is None and self._live_path is not None:
            try:
                self._live = os.open(self._live_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            except OSError:
                pass  # a worker on another machine: nothing to follow there
            self._live_path = None
        if self._live is not None:
            try:
                # The live file is local and short-lived, but no place for a secret either.
                os.write(self._live, scrub_text(text).encode("utf-8", "replace"))
            except OSError:
                self._close_live()
        return written

    def _close_live(self) -> None:
        self._live_path = None
        if self._live is not None:
            os.close(self._live)
            self._live = None


class _Tee(io.TextIOBase):
    """Writes to the console stream and to the step's log buffer."""

    def __init__(self, console: TextIO, buffer: io.StringIO) -> None:
        self._console = console
        self._buffer = buffer

    def write(self, text: str) -> int:
        self._buffer.write(text)
        return self._console.write(text)

    def flush(self) -> None:
        self._console.flush()

    def isatty(self) -> bool:
        return self._console.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._console, "encoding", "utf-8")

    def fileno(self) -> int:
        return self._console.fileno()


class _BufferHandler(logging.Handler):
    def __init__(self, buffer: io.StringIO, echo_to: TextIO | None, echo_level: int) -> None:
        super().__init__(logging.DEBUG)
        self._buffer = buffer
        self._echo_to = echo_to
        self._echo_level = echo_level
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        self._buffer.write(line)
        if self._echo_to is not None and record.levelno >= self._echo_level:
            self._echo_to.write(line)


@contextmanager
def capture_logs(live_log: str | None = None) -> Iterator[io.StringIO]:
    """Collect everything the step prints or logs into one buffer (and the ``live_log`` file)."""
    buffer = _LogBuffer(live_log)
    root = logging.getLogger()
    unconfigured = not root.handlers
    original_level = root.level
    # With no handler configured, Python shows WARNING and above on stderr
    # (logging.lastResort); we keep showing exactly that, while recording INFO too.
    handler = _BufferHandler(buffer, sys.stderr if unconfigured else None, logging.WARNING)
    root.addHandler(handler)
    if unconfigured and original_level > logging.INFO:
        root.setLevel(logging.INFO)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = _Tee(stdout, buffer)  # type: ignore[assignment]
    sys.stderr = _Tee(stderr, buffer)  # type: ignore[assignment]
    try:
        yield buffer
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        root.removeHandler(handler)
        root.setLevel(original_level)
        buffer._close_live()
