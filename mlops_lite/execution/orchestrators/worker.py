"""The worker process of the ``pool`` orchestrator: runs the tasks its driver sends.

Started as ``python -m mlops_lite.execution.orchestrators.worker READ_FD WRITE_FD``
rather than through ``multiprocessing``: spawn would re-import the user's script as
``__mp_main__`` (re-running an unguarded pipeline call), and fork would copy a
driver holding open git packs. The protocol is length-prefixed frames
(``multiprocessing.connection``): the driver sends a ``WorkerSetup``, the worker
answers ``ready``, then each task frame gets one result frame. End of input
means the run is over.
"""

from __future__ import annotations

import pickle
import signal
import sys
from multiprocessing.connection import Connection

__all__ = ["READY", "main"]

READY = b"ready"


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group; the driver decides what to stop.
    """Serve tasks from the driver's pipe until it closes; the process's exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tasks = Connection(int(argv[0]), writable=False)
    results = Connection(int(argv[1]), readable=False)
    from mlops_lite.execution.task import WorkerSetup, run_encoded_task

    try:
        setup = pickle.loads(tasks.recv_bytes())
    except EOFError:
        return 0
    assert isinstance(setup, WorkerSetup)
    setup.apply()
    results.send_bytes(READY)
    while True:
        try:
            data = tasks.recv_bytes()
        except EOFError:
            return 0
        result = run_encoded_task(data)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        results.send_bytes(result)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
