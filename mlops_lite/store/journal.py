"""The journal of a run being recorded: one append per finished step, no git work.

A run's objects go into one pack when it ends; until then each finished step is
appended here (a length-prefixed msgpack frame), under an exclusive ``flock``
held for the writer's lifetime. So a ``kill -9`` loses no finished step: the
next writer finds a journal whose lock is free and turns it into a ``crashed``
run. Journals live in ``.git/mlops-lite/journal/`` and are never pushed; one
that cannot be read is moved to ``journal/damaged/``, never deleted.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from mlops_lite.core.names import is_valid_name
from mlops_lite.store.failures import store_os_error
from mlops_lite.store.layout import RUNS_PREFIX
from mlops_lite.store.objects import TYPE_NAMES, GitObject, make_object
from mlops_lite.store.refs import is_sha

__all__ = [
    "STARTED_STEPS",
    "Journal",
    "JournalContents",
    "JournalEntry",
    "JournalHeader",
    "journal_directory",
    "journal_exists",
    "live_logs_directory",
    "parse_journal",
    "read_journal",
    "read_live_journal",
    "run_is_live",
    "set_aside",
]

_FRAME: Final = struct.Struct(">I")


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
        temporary = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # Locked and given its header under a temporary name first: a journal
            # that is visible under its real name always has a live lock or a dead writer.
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        except OSError as error:
            raise store_os_error(f"start the journal of run {ref}", error) from None
        journal = cls(path, handle)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            journal._write(
                ["run", ref, running_commit, code_commit, os.getpid(), socket.gethostname()]
            )
            os.replace(temporary, path)
        except BaseException:
            os.close(handle)
            _unlink(temporary)
            raise
        return journal

    def _write(self, frame: list[object]) -> None:
        data = msgpack.packb(frame, use_bin_type=True)
        view = memoryview(_FRAME.pack(len(data)) + data)
        try:
            while view:
                view = view[os.write(self.handle, view) :]
        except OSError as error:
            raise store_os_error(f"append to the run journal {self.path}", error) from None

    def append(self, entry: JournalEntry) -> None:
        """Record one finished step."""
        self._write(
            ["step", entry.step_name, entry.tree_id, [[o.type_num, o.data] for o in entry.objects]]
        )

    def close_and_remove(self) -> None:
        """The run is in git: drop the journal."""
        # Unlinked while still locked, so no recoverer can take it for abandoned.
        _unlink(self.path)
        os.close(self.handle)


@dataclass(frozen=True, slots=True)
class JournalContents:
    """What a journal held: its header, the steps that decoded, and whether any did not."""

    header: JournalHeader
    entries: list[JournalEntry]
    damaged: bool


def _frames(data: bytes) -> Iterator[bytes]:
    """Each complete frame's bytes; a torn final write (the writer died mid-append) ends it."""
    position = 0
    while position + _FRAME.size <= len(data):
        (length,) = _FRAME.unpack_from(data, position)
        start = position + _FRAME.size
        if start + length > len(data):
            return
        yield data[start : start + length]
        position = start + length


def _decode_frame(frame: bytes) -> Any:
    try:
        return msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.exceptions.UnpackException):
        return None


def _header(frame: Any) -> JournalHeader | None:
    if type(frame) is not list or len(frame) != 6 or frame[0] != "run":
        return None
    _, ref, running_commit, code_commit, pid, host = frame
    if not (
        type(ref) is str
        and ref.startswith(RUNS_PREFIX)
        and is_sha(running_commit)
        and (code_commit == "" or is_sha(code_commit))
        and type(pid) is int
        and type(host) is str
    ):
        return None
    return JournalHeader(ref, running_commit, code_commit, pid, host)


def _entry(frame: Any) -> JournalEntry | None:
    if type(frame) is not list or len(frame) != 4 or frame[0] != "step":
        return None
    _, step_name, tree_id, raw_objects = frame
    if not (is_valid_name(step_name) and is_sha(tree_id) and type(raw_objects) is list):
        return None
    objects = []
    for item in raw_objects:
        if (
            type(item) is not list
            or len(item) != 2
            or item[0] not in TYPE_NAMES
            or type(item[1]) is not bytes
        ):
            return None
        objects.append(make_object(item[0], item[1]))
    return JournalEntry(step_name, tree_id, objects)


def read_journal(path: str) -> JournalContents | None:
    """The header and the steps of the journal at ``path`` (see ``parse_journal``)."""
    with open(path, "rb") as f:
        return parse_journal(f.read())


def parse_journal(data: bytes) -> JournalContents | None:
    """The header and the steps of a journal's bytes; None when they hold no run at all.

    Steps are read up to the first frame that does not decode (``damaged``):
    those after it cannot be trusted to be what the writer wrote.
    """
    frames = _frames(data)
    header = _header(_decode_frame(next(frames, b"")))
    if header is None:
        return None
    entries = []
    damaged = False
    for frame in frames:
        entry = _entry(_decode_frame(frame))
        if entry is None:
            damaged = True
            break
        entries.append(entry)
    return JournalContents(header, entries, damaged)


def set_aside(path: str, state_dir: str) -> str:
    """Move a journal that cannot be recovered to ``journal/damaged/``; its new path.

    Nothing is deleted: whoever wants to look at it finds it there.
    """
    directory = os.path.join(journal_directory(state_dir), "damaged")
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, f"{os.path.basename(path)}.{int(time.time())}")
    os.replace(path, target)
    return target


def journal_exists(state_dir: str, ref: str) -> bool:
    """Whether the run at ``ref`` still has a journal here (recording, or not yet recovered)."""
    return os.path.exists(_journal_path(state_dir, ref))


# In a run's live logs directory: one ``<step>\t<start time>`` line per step started.
STARTED_STEPS: Final = "started"


def live_logs_directory(state_dir: str, ref: str) -> str:
    """Where the steps of the run at ``ref`` write their logs while they run (``<step>.log``)."""
    return _journal_path(state_dir, ref).removesuffix(".journal") + ".logs"


def read_live_journal(state_dir: str, ref: str) -> tuple[JournalHeader, list[JournalEntry]] | None:
    """The journal of a run still being recorded here (its finished steps); None when none."""
    try:
        contents = read_journal(_journal_path(state_dir, ref))
    except (FileNotFoundError, IsADirectoryError):
        return None
    except OSError:
        return None  # unreadable here (permissions): as if there were none
    return (contents.header, contents.entries) if contents is not None else None


def run_is_live(state_dir: str, ref: str) -> bool:
    """True when a process on this machine is still recording the run at ``ref``."""
    path = _journal_path(state_dir, ref)
    try:
        handle = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)
    return False


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
