"""Protecting packs that no ref reaches yet from git's maintenance: ``.keep`` files.

A run's objects are written before the ref that will reach them moves, and in
that window ``git gc --prune=now`` or ``git repack -a -d`` would drop them.
As ``git fetch`` does with the pack it is receiving, each pack we write gets a
``pack-<sha>.keep`` beside it *before* the pack appears; git never repacks,
prunes or deletes a kept pack. The keep is removed once the ref exists.

A keep names what it protects, so that one left by a writer that died can be
swept by the next one::

    mlops-lite
    kind in-flight|running
    ref refs/mlops/runs/<pipeline>/<run>
    commit <sha>            (running: the commit the ref points at while the run lives)
    pid <pid>
    host <hostname>

``in-flight`` protects objects until the writer has moved its ref; ``running``
protects a run's ``running`` commit for as long as the ref points at it (a
crashed run keeps it until it is recovered).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "KEEP_HEADER",
    "Keep",
    "KeepInfo",
    "combine_keeps",
    "read_keeps",
    "release_keeps_of",
    "sweep_stale_keeps",
    "write_keep",
]

KEEP_HEADER: Final = "mlops-lite"

KeepKind = Literal["in-flight", "running"]


@dataclass(frozen=True, slots=True)
class KeepInfo:
    """What one of our ``.keep`` files says."""

    path: str
    kind: str
    ref: str
    commit: str
    pid: int
    host: str


class Keep:
    """One pack's ``.keep``, removed by ``release`` (idempotent)."""

    def __init__(self, path: str | None, content: bytes, *, held_here: bool = False) -> None:
        self.path = path
        self._content = content
        # The pack was already kept, by a keep saying exactly this (this process,
        # for the same ref): it stays until that writer releases its keeps.
        self.held_here = held_here

    def release(self) -> None:
        """Let git's maintenance treat the pack as any other (its objects are reachable now)."""
        path, self.path = self.path, None
        if path is None:
            return
        try:
            with open(path, "rb") as f:
                if f.read(4096) != self._content:
                    return  # another writer's keep on an identical pack: theirs to remove
            os.unlink(path)
        except FileNotFoundError:
            pass


class _Keeps(Keep):
    """Several keeps released together: a run's new pack and the packs it reuses objects of."""

    def __init__(self, keeps: list[Keep]) -> None:
        super().__init__(None, b"")
        self._keeps = keeps

    def release(self) -> None:
        """Release every keep (idempotent)."""
        keeps, self._keeps = self._keeps, []
        for keep in keeps:
            keep.release()


def combine_keeps(keeps: list[Keep]) -> Keep:
    """One keep whose ``release`` releases all of ``keeps``."""
    return keeps[0] if len(keeps) == 1 else _Keeps(keeps)


def write_keep(keep_path: str, kind: KeepKind, ref: str, commit: str = "") -> Keep:
    """Create ``keep_path`` (``pack-<sha>.keep``) saying who protects the pack and why."""
    content = (
        f"{KEEP_HEADER}\nkind {kind}\nref {ref}\ncommit {commit or '-'}\n"
        f"pid {os.getpid()}\nhost {socket.gethostname()}\n"
    ).encode()
    try:
        handle = os.open(keep_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        # An identical pack is already kept by another writer: its keep protects
        # these objects too, until that writer's ref reaches them.
        try:
            with open(keep_path, "rb") as f:
                held_here = f.read(4096) == content
        except OSError:
            held_here = False
        return Keep(None, content, held_here=held_here)
    try:
        os.write(handle, content)
    finally:
        os.close(handle)
    return Keep(keep_path, content)


def read_keeps(pack_dir: str) -> Iterator[KeepInfo]:
    """Every ``.keep`` in ``pack_dir`` that mlops_lite wrote (others are left alone)."""
    try:
        names = [name for name in os.listdir(pack_dir) if name.endswith(".keep")]
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(pack_dir, name)
        try:
            with open(path, "rb") as f:
                text = f.read(4096).decode("utf-8", "replace")
        except OSError:
            continue
        lines = text.splitlines()
        if not lines or lines[0] != KEEP_HEADER:
            continue
        fields: dict[str, str] = {}
        for line in lines[1:]:
            key, _, value = line.partition(" ")
            fields[key] = value
        try:
            pid = int(fields.get("pid", ""))
        except ValueError:
            continue
        commit = fields.get("commit", "-")
        yield KeepInfo(
            path,
            fields.get("kind", ""),
            fields.get("ref", ""),
            "" if commit == "-" else commit,
            pid,
            fields.get("host", ""),
        )


def release_keeps_of(pack_dir: str, ref: str) -> None:
    """Remove every keep protecting objects of ``ref`` (its run was recovered)."""
    for keep in read_keeps(pack_dir):
        if keep.ref == ref:
            _unlink(keep.path)


def sweep_stale_keeps(
    pack_dir: str,
    read_ref: Callable[[str], str | None],
    journal_exists: Callable[[str], bool],
) -> None:
    """Remove keeps whose writer died on this machine and that no longer protect anything.

    A dead writer's run is recovered from its journal, which needs the objects
    the keeps protect: while a journal exists for the ref, its keeps stay. A
    ``running`` keep also stays while the ref still points at its commit.
    """
    host = socket.gethostname()
    for keep in read_keeps(pack_dir):
        if keep.host != host or _alive(keep.pid) or journal_exists(keep.ref):
            continue
        if keep.kind == "running" and keep.commit and read_ref(keep.ref) == keep.commit:
            continue
        _unlink(keep.path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
