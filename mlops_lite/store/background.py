"""Maintenance in a process of its own, so that no run waits for it.

``python -m mlops_lite.store.background_job ROOT`` is started (detached, in
its own session) after a run once the repository has more than ``PACK_LIMIT``
packs or enough runs to fold (``start_maintenance``); it merges packs and
folds old runs into archives, one process at a time (the others see the lock
and leave), and never reports anything: it is housekeeping, and the next run
starts it again if something was left undone.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from typing import Final

__all__ = ["maintenance_needed", "start_maintenance", "wait_for_maintenance"]

# Started processes, kept so that they are reaped once done (no zombie lingers in a
# long-lived parent such as a notebook or the dashboard).
_started: list[subprocess.Popen[bytes]] = []
_FOREGROUND: Final = "MLOPS_LITE_MAINTENANCE"


def maintenance_needed(pack_dir: str, individual_runs: int) -> bool:
    """Whether packs should be merged or runs folded now."""
    from mlops_lite.store.archives import ARCHIVE_BATCH
    from mlops_lite.store.folding import RECENT_RUNS
    from mlops_lite.store.maintenance import PACK_LIMIT, count_packs

    return individual_runs >= RECENT_RUNS + ARCHIVE_BATCH or count_packs(pack_dir) > PACK_LIMIT


def start_maintenance(root: str, state_dir: str) -> None:
    """Start the maintenance process for ``root`` unless one is already at work.

    ``MLOPS_LITE_MAINTENANCE=foreground`` does the work in this process instead
    (scripts that must see the result at once), ``off`` skips it.
    """
    from mlops_lite.store.maintenance import maintenance_lock

    for process in list(_started):
        if process.poll() is not None:
            _started.remove(process)
    mode = os.environ.get(_FOREGROUND, "background")
    if mode == "off":
        return
    try:
        with open(maintenance_lock(state_dir), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: nobody at work
    except BlockingIOError:
        return
    except OSError:
        return  # a read-only repository: nothing to do
    # The child imports the same mlops_lite as this process, installed or not.
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "mlops_lite.store.background_job", root]
    if mode == "foreground":
        subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True)
        return
    try:
        _started.append(
            subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        )
    except OSError:
        pass  # housekeeping only


def wait_for_maintenance() -> None:
    """Wait for the maintenance processes this process started to end (scripts, tests)."""
    while _started:
        _started.pop().wait()
