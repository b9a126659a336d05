"""Ctrl-C and SIGTERM during a run: stop, record what happened as ``cancelled``, then stop.

SIGINT already raises ``KeyboardInterrupt``. SIGTERM (what CI systems and
``kill`` send) would end the process before anything is recorded, so while a
run is recorded it raises ``RunTerminated``, a ``KeyboardInterrupt``, and the
same code path records the run; then the signal is delivered again with its
original disposition, so the process still ends the way its parent expects.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["RunTerminated", "describe_interruption", "terminate_as_interrupt"]


class RunTerminated(KeyboardInterrupt):
    """SIGTERM arrived while a run was being recorded."""


def describe_interruption(error: BaseException) -> str:
    """``SIGTERM`` or ``SIGINT (Ctrl-C)``: what stopped the run."""
    chain: BaseException | None = error
    while chain is not None:
        if isinstance(chain, RunTerminated):
            return "SIGTERM"
        chain = chain.__cause__
    return "SIGINT (Ctrl-C)"


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``RunTerminated`` (main thread, default handler only)."""
    usable = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if usable else None
    if previous is not signal.SIG_DFL:
        # Someone else handles (or ignores) SIGTERM: theirs to decide.
        yield
        return

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise RunTerminated("SIGTERM")

    signal.signal(signal.SIGTERM, raise_interrupt)
    terminated = False
    try:
        yield
    except RunTerminated:
        terminated = True
        raise
    except KeyboardInterrupt as error:
        terminated = describe_interruption(error) == "SIGTERM"
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if terminated:
            # The run is recorded: now end as SIGTERM would have.
            os.kill(os.getpid(), signal.SIGTERM)
