"""Local provenance: the run commits this clone wrote, kept in ``.git/mlops-lite/provenance``.

A run commit this clone wrote holds only bytes this clone produced (or
reused after trusting them), so its pickles may be loaded here. The fact is
local: the file is never pushed, a teammate cannot add to it, and nothing in
a run (an author e-mail, a flag) can stand in for it. A lost or damaged file
means "nothing is trusted", never a guess: the runs are still there, only
their pickles ask for trust again.

One 40- or 64-hex commit id per line, appended with ``O_APPEND`` (one
``write`` per line, so concurrent writers do not interleave); a torn or
foreign line is ignored when read. A process remembers the ids it has read
(the file only grows), so losing the file takes effect in the next process.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from typing import Final

from mlops_lite.store.failures import store_os_error
from mlops_lite.store.interface import Store

__all__ = ["PROVENANCE_FILE", "recorded_here", "remember_recorded"]

PROVENANCE_FILE: Final = "provenance"

_COMMIT_ID = re.compile(rb"(?:[0-9a-f]{40}|[0-9a-f]{64})")

# Stores without a state directory (the memory store) keep provenance in memory.
_in_memory: weakref.WeakKeyDictionary[object, set[str]] = weakref.WeakKeyDictionary()
# path -> (stamp, commit ids): re-read only when the file changed.
_cache: dict[str, tuple[tuple[int, int, int], frozenset[str]]] = {}
_lock = threading.Lock()


def _path(state_dir: str) -> str:
    return os.path.join(state_dir, PROVENANCE_FILE)


def remember_recorded(store: Store, commit_id: str) -> None:
    """Note that this clone wrote run commit ``commit_id`` (call before any ref points at it)."""
    if store.state_dir is None:
        with _lock:
            _in_memory.setdefault(store, set()).add(commit_id)
        return
    try:
        os.makedirs(store.state_dir, exist_ok=True)
        handle = os.open(_path(store.state_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(handle, commit_id.encode("ascii") + b"\n")
        finally:
            os.close(handle)
    except OSError as error:  # a full disk or a read-only repository: one line, not a traceback
        raise store_os_error(f"note the run {commit_id[:10]} in {store.state_dir}", error) from None


def recorded_here(store: Store, commit_id: str) -> bool:
    """Whether this clone wrote run commit ``commit_id``."""
    if store.state_dir is None:
        with _lock:
            return commit_id in _in_memory.get(store, ())
    path = _path(store.state_dir)
    with _lock:
        cached = _cache.get(path)
    # The file only grows: an id seen once needs no second look (this is asked
    # on every cache hit). Only a miss looks at the file again.
    if cached is not None and commit_id in cached[1]:
        return True
    return commit_id in _read(path)


def _read(path: str) -> frozenset[str]:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return frozenset()
    stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _lock:
        cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        with open(path, "rb") as source:
            lines = source.read().split(b"\n")
    except OSError:
        return frozenset()  # unreadable: nothing is trusted
    found = frozenset(line.decode() for line in lines if _COMMIT_ID.fullmatch(line))
    with _lock:
        _cache[path] = (stamp, found)
    return found
