"""Ledgers: small maps a whole team writes, as commit chains that merge instead of conflicting.

::

    refs/mlops/deleted    runs deleted for the whole team: {run ref: sha}
    refs/mlops/pins       runs pinned (never collected by gc): {run ref: true|false}

Each commit's tree holds ``ledger.msgpack``, the whole map with, per key, the
time it was set and by whom; each parent is the state it was made from. A
writer sets keys and moves the ref by compare-and-swap; a pull that finds a
teammate's chain diverged from ours joins them with a merge commit whose map
takes, per key, the entry set last (``merge_ledgers``). Deletions only ever
add keys, so a deletion travels to every clone that pulls or pushes, and none
can bring the run back. Like everything from a remote, a ledger is decoded
with bounds and checked key by key: a malformed entry is dropped, not obeyed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from mlops_lite.core.records import pack_value, unpack_value
from mlops_lite.errors import MlopsLiteError, RecordError, RefConflictError
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import parse_run_ref, read_tree_blob
from mlops_lite.store.refs import is_sha
from mlops_lite.store.state_commits import commit_state

__all__ = [
    "DELETED_REF",
    "LEDGER_REFS",
    "PINS_REF",
    "LedgerEntry",
    "decode_ledger",
    "join_ledger",
    "merge_ledgers",
    "read_ledger",
    "read_ledger_at",
    "set_entries",
]

DELETED_REF: Final = "refs/mlops/deleted"
PINS_REF: Final = "refs/mlops/pins"
LEDGER_REFS: Final = (DELETED_REF, PINS_REF)

_STATE: Final = "ledger.msgpack"
_ATTEMPTS: Final = 20
_MAX_AUTHOR: Final = 320


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One key's value, when it was set and by whom (later wins in a merge)."""

    value: Any
    time: float
    author: str


Ledger = dict[str, LedgerEntry]

# What each ledger's values may be; anything else from a remote is dropped.
_VALUES: Final[dict[str, Callable[[Any], bool]]] = {
    DELETED_REF: is_sha,
    PINS_REF: lambda value: type(value) is bool,
}


def read_ledger(store: Store, name: str) -> Ledger:
    """The map ``name`` holds now (empty when the ledger does not exist)."""
    head = store.refs.read(name)
    return {} if head is None else read_ledger_at(store, name, head)


def read_ledger_at(store: Store, name: str, commit_id: str) -> Ledger:
    """The map a commit of ledger ``name`` holds; RecordError when it is no ledger state."""
    data = read_tree_blob(store.read_object, commit_id, _STATE)
    return decode_ledger(name, data, where=f"{name} at {commit_id[:10]}")


def decode_ledger(name: str, data: bytes, *, where: str) -> Ledger:
    """A ledger's map read back; RecordError when it is none, malformed entries dropped."""
    state = unpack_value(data, where=where)
    if not isinstance(state, dict):
        raise RecordError(f"{where} is not a ledger")
    valid = _VALUES.get(name, lambda value: False)
    ledger: Ledger = {}
    for key, entry in state.items():
        if (
            parse_run_ref(key) is None
            or type(entry) is not list
            or len(entry) != 3
            or not valid(entry[0])
            or type(entry[1]) not in (int, float)
            or type(entry[2]) is not str
            or len(entry[2]) > _MAX_AUTHOR
        ):
            continue  # a teammate's malformed entry is not obeyed
        ledger[key] = LedgerEntry(entry[0], float(entry[1]), entry[2])
    return ledger


def _encode(ledger: Ledger) -> bytes:
    return pack_value(
        {key: [entry.value, entry.time, entry.author] for key, entry in sorted(ledger.items())}
    )


def set_entries(store: Store, name: str, values: Mapping[str, Any], *, message: str) -> None:
    """Set ``values`` in ledger ``name`` (merged over a concurrent writer's, never lost)."""
    now = time.time()
    author = store.identity.email
    for _ in range(_ATTEMPTS):
        head = store.refs.read(name)
        ledger = read_ledger_at(store, name, head) if head else {}
        for key, value in values.items():
            ledger[key] = LedgerEntry(value, now, author)
        if _commit_state(store, name, ledger, [head] if head else [], message):
            return
    raise RefConflictError(f"{name} kept changing while we wrote it; run the command again")


def merge_ledgers(ours: Ledger, theirs: Ledger) -> Ledger:
    """Both maps in one: per key, the entry set last (ours when both were set at once)."""
    merged = dict(theirs)
    for key, entry in ours.items():
        other = merged.get(key)
        if other is None or (entry.time, entry.value is True) >= (other.time, other.value is True):
            merged[key] = entry
    return merged


def join_ledger(store: Store, name: str, theirs: str) -> bool:
    """Join a teammate's chain ``theirs`` into ours with a merge commit (or take it whole).

    Returns False when their state cannot be read: our ledger stays as it is.
    """
    for _ in range(_ATTEMPTS):
        ours = store.refs.read(name)
        if ours == theirs:
            return True
        try:
            other = read_ledger_at(store, name, theirs)
            mine = read_ledger_at(store, name, ours) if ours else {}
        except MlopsLiteError:
            return False
        if ours is None:
            parents = [theirs]
        else:
            parents = [ours, theirs]
        merged = merge_ledgers(mine, other)
        if ours is not None and merged == other:
            # Nothing of ours is missing from theirs: fast-forward, as git would.
            if _move(store, name, ours, theirs):
                return True
            continue
        if ours is None:
            if _move(store, name, None, theirs):
                return True
            continue
        if _commit_state(store, name, merged, parents, f"mlops-lite {name}: merged a teammate's\n"):
            return True
    return False


def _move(store: Store, name: str, old: str | None, new: str) -> bool:
    try:
        store.refs.compare_and_swap(name, old, new)
        return True
    except RefConflictError:
        return False


def _commit_state(
    store: Store, name: str, ledger: Ledger, parents: list[str], message: str
) -> bool:
    """Move ``name`` from ``parents[0]`` to a commit of ``ledger``; False if it moved meanwhile."""
    return commit_state(store, name, _STATE, _encode(ledger), parents, message)
