"""The journal of a run being recorded: one append per finished step, no git work.

A run's objects go into one pack when it ends; until then each finished step is
appended here (a length-prefixed msgpack frame), under an exclusive ``flock``
held for the writer's lifetime. So a ``kill -9`` loses no finished step: the
next writer finds a journal whose lock is free and turns it into a ``crashed``
run. Journals live in ``.git/mlops-lite/journal/`` and are never pushed.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from mlops_lite.store.layout import RUNS_PREFIX
from mlops_lite.store.objects import GitObject, make_object

__all__ = [
    "STARTED_STEPS",
    "Journal",
    "JournalEntry",
    "JournalHeader",
    "journal_directory",
    "live_logs_directory",
    "read_journal",
    "read_live_journal",
    "run_is_live",
]

_FRAME: Final = struct.Struct(">I")
_MAX_FRAME: Final = 1 << 31


def journal_directory(state_dir: str) -> str:
    """Where the journals of a repository's running runs are."""
    return os.path.join(state_dir, "journal")


def _journal_path(state_dir: str, ref: str) -> str:
    """The journal of the run at ``ref``."""
    return os.path.join(
        journal_directory(state_dir), ref.removeprefix(RUNS_PREFIX).replace("/", "__") + ".journal"
    )


@dataclass(frozen=True, slots=True)
class JournalHeader:
    """The first frame: which run this is and where it was started."""

    ref: str
    running_commit: str
    code_commit: str
    pid: int
    host: str


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One recorded step: its subtree id and the objects it needs."""

    step_name: str
    tree_id: str
    objects: list[GitObject]


class Journal:
    """Append-only frames; the writer holds an exclusive flock while it lives."""

    def __init__(self, path: str, handle: int) -> None:
        self.path = path
        self.handle = handle

    @classmethod
    def create(cls, state_dir: str, ref: str, running_commit: str, code_commit: str) -> Journal:
        """Create and lock the journal of a run that just started."""
        path = _journal_path(state_dir, ref)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Locked and given its header under a temporary name first: a journal
        # that is visible under its real name always has a live lock or a dead writer.
        temporary = f"{path}.{os.getpid()}.tmp"
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        journal = cls(path, handle)
        journal._write(["run", ref, running_commit, code_commit, os.getpid(), socket.gethostname()])
        os.replace(temporary, path)
        return journal

    def _write(self, frame: list[object]) -> None:
        data = msgpack.packb(frame, use_bin_type=True)
        os.write(self.handle, _FRAME.pack(len(data)) + data)

    def append(self, entry: JournalEntry) -> None:
        """Record one finished step."""
        self._write(
            ["step", entry.step_name, entry.tree_id, [[o.type_num, o.data] for o in entry.objects]]
        )

    def close_and_remove(self) -> None:
        """The run is in git: drop the journal."""
        # Unlinked while still locked, so no recoverer can take it for abandoned.
        os.unlink(self.path)
        os.close(self.handle)


def _frames(data: bytes) -> Iterator[Any]:
    position = 0
    while position + _FRAME.size <= len(data):
        (length,) = _FRAME.unpack_from(data, position)
        start = position + _FRAME.size
        if length > _MAX_FRAME or start + length > len(data):
            return  # torn final write: that step did not finish recording
        yield msgpack.unpackb(data[start : start + length], raw=False)
        position = start + length


def read_journal(path: str) -> tuple[JournalHeader, list[JournalEntry]] | None:
    """The header and steps of a journal; None when it holds no run (or is damaged)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        frames = list(_frames(data))
        if not frames or not isinstance(frames[0], list) or frames[0][:1] != ["run"]:
            return None
        _, ref, running_commit, code_commit, pid, host = frames[0]
        header = JournalHeader(str(ref), str(running_commit), str(code_commit), int(pid), str(host))
        entries = []
        for frame in frames[1:]:
            _, step_name, tree_id, raw_objects = frame
            objects = [make_object(int(type_num), bytes(body)) for type_num, body in raw_objects]
            entries.append(JournalEntry(str(step_name), str(tree_id), objects))
    except (ValueError, TypeError, KeyError, msgpack.exceptions.UnpackException):
        return None
    return header, entries


# In a run's live logs directory: one ``<step>\t<start time>`` line per step started.
STARTED_STEPS: Final = "started"


def live_logs_directory(state_dir: str, ref: str) -> str:
    """Where the steps of the run at ``ref`` write their logs while they run (``<step>.log``)."""
    return _journal_path(state_dir, ref).removesuffix(".journal") + ".logs"


def read_live_journal(state_dir: str, ref: str) -> tuple[JournalHeader, list[JournalEntry]] | None:
    """The journal of a run still being recorded here (its finished steps); None when none."""
    try:
        return read_journal(_journal_path(state_dir, ref))
    except FileNotFoundError:
        return None


def run_is_live(state_dir: str, ref: str) -> bool:
    """True when a process on this machine is still recording the run at ``ref``."""
    path = _journal_path(state_dir, ref)
    try:
        handle = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)
    return False
