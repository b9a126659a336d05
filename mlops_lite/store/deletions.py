"""Which runs are deleted: for the whole team (a ledger) or in this clone only (a local file).

``mlops-lite runs delete`` and ``gc`` remove a run's ref and remember the run,
so that no pull brings it back. Deleted with ``--remote``, the run goes into
the team's ``refs/mlops/deleted`` ledger (``ledgers.py``), which travels with
push and pull; deleted here only, it goes into ``.git/mlops-lite/deleted``,
one ``<sha> <ref>`` line per run, never pushed (losing that file only means a
later pull may bring those runs back).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from typing import Final

from mlops_lite.errors import MlopsLiteError
from mlops_lite.store.failures import store_os_error
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import parse_run_ref
from mlops_lite.store.ledgers import DELETED_REF, read_ledger
from mlops_lite.store.refs import is_sha

__all__ = [
    "LOCAL_DELETIONS",
    "add_local_deletions",
    "deleted_runs",
    "local_deletions",
    "local_deletions_path",
]

LOCAL_DELETIONS: Final = "deleted"


def local_deletions_path(state_dir: str) -> str:
    """The file listing the runs deleted in this clone only."""
    return os.path.join(state_dir, LOCAL_DELETIONS)


def local_deletions(state_dir: str | None) -> dict[str, str]:
    """``{run ref: sha}`` deleted in this clone only."""
    if state_dir is None:
        return {}
    try:
        with open(local_deletions_path(state_dir), "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise store_os_error(f"read {local_deletions_path(state_dir)}", error) from None
    deleted = {}
    for line in lines:
        sha, _, ref = line.partition(" ")
        if is_sha(sha) and parse_run_ref(ref) is not None:
            deleted[ref] = sha
    return deleted


def add_local_deletions(state_dir: str, runs: Mapping[str, str]) -> None:
    """Remember ``{run ref: sha}`` as deleted here (appended, under a lock)."""
    if not runs:
        return
    path = local_deletions_path(state_dir)
    try:
        os.makedirs(state_dir, exist_ok=True)
        with open(path, "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write("".join(f"{sha} {ref}\n" for ref, sha in sorted(runs.items())).encode())
            f.flush()
            os.fsync(f.fileno())
    except OSError as error:
        raise store_os_error(f"write {path}", error) from None


def deleted_runs(store: Store) -> dict[str, str]:
    """``{run ref: sha}`` of every deleted run: the team's ledger and this clone's own.

    A team ledger that cannot be read deletes nothing (it is input from others).
    """
    try:
        shared = {ref: entry.value for ref, entry in read_ledger(store, DELETED_REF).items()}
    except MlopsLiteError:
        shared = {}
    return {**shared, **local_deletions(store.state_dir)}
