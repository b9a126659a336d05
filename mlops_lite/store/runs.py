"""A run as git objects: its tree layout, the writer that records it, crash recovery.

Run commit tree::

    run.msgpack                          the RunRecord
    steps/<step>/step.msgpack            the StepRecord
    steps/<step>/logs.txt                captured stdout, stderr and logging
    steps/<step>/outputs/<output>        the artifact tree (content-addressed)

The commit's first parent is the code commit the run is pinned to. The ref
``refs/mlops/runs/<pipeline>/<run-name>`` first points at a commit with status
``running``; finished steps go to an append-only journal (one write per step, no
git work), so a ``kill -9`` loses no finished step; ``finish`` writes every
object as one pack and moves the ref once. A journal whose writer died is turned
into a ``crashed`` run by the next writer (``recover_abandoned_runs``).
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgpack

from mlops_lite.records import RunRecord, StepRecord
from mlops_lite.store.interface import ObjectRefStore
from mlops_lite.store.maintenance import consolidate_packs
from mlops_lite.store.objects import (
    MODE_BLOB,
    MODE_TREE,
    GitObject,
    blob,
    commit,
    make_object,
    parse_commit,
    parse_tree,
    tree,
)
from mlops_lite.store.repository import RUNS_PREFIX, GitStore

# Steps whose objects exceed this go straight into a pack of their own instead of
# the journal: big artifacts are then written once, not twice.
_DIRECT_PACK_BYTES = 8 * 1024 * 1024


def run_ref(pipeline_name: str, run_name: str) -> str:
    return f"{RUNS_PREFIX}{pipeline_name}/{run_name}"


@dataclass
class StepEntry:
    """A recorded step: the id of its subtree, and the objects not yet in a pack."""

    name: str
    tree_id: str
    objects: list[GitObject] = field(default_factory=list)


def build_step_tree(
    record: StepRecord, logs: str, outputs: dict[str, str]
) -> tuple[GitObject, list[GitObject]]:
    record_blob = blob(record.encode())
    objects = [record_blob]
    entries = {"step.msgpack": (MODE_BLOB, record_blob.id)}
    if logs:
        logs_blob = blob(logs.encode("utf-8", "replace"))
        objects.append(logs_blob)
        entries["logs.txt"] = (MODE_BLOB, logs_blob.id)
    if outputs:
        outputs_tree = tree({name: (MODE_TREE, artifact_id) for name, artifact_id in outputs.items()})
        objects.append(outputs_tree)
        entries["outputs"] = (MODE_TREE, outputs_tree.id)
    step_tree = tree(entries)
    objects.append(step_tree)
    return step_tree, objects


def build_run_commit(
    store: ObjectRefStore, record: RunRecord, steps: dict[str, str], code_commit: str
) -> tuple[GitObject, list[GitObject]]:
    record_blob = blob(record.encode())
    objects = [record_blob]
    entries = {"run.msgpack": (MODE_BLOB, record_blob.id)}
    if steps:
        steps_tree = tree({name: (MODE_TREE, tree_id) for name, tree_id in steps.items()})
        objects.append(steps_tree)
        entries["steps"] = (MODE_TREE, steps_tree.id)
    run_tree = tree(entries)
    objects.append(run_tree)
    timestamp = record.end_time or record.start_time
    message = f"mlops-lite run {record.pipeline_name}/{record.run_name}: {record.status}\n"
    run_commit = commit(
        tree_id=run_tree.id,
        parents=[code_commit],
        author=store.identity,
        timestamp=timestamp,
        tz_offset_minutes=_utc_offset_minutes(timestamp),
        message=message,
    )
    objects.append(run_commit)
    return run_commit, objects


def _utc_offset_minutes(timestamp: float) -> int:
    offset = time.localtime(timestamp).tm_gmtoff
    return int(offset // 60)


class RunWriter:
    """Records one run; the only code that moves a run's ref."""

    def __init__(self, store: GitStore, record: RunRecord, code_commit: str) -> None:
        self.store = store
        self.record = record
        self.code_commit = code_commit
        self.ref = run_ref(record.pipeline_name, record.run_name)
        self.steps: dict[str, str] = {}
        self._pending: list[GitObject] = []
        self._journal: _Journal | None = None
        self.head: str | None = None

    def start(self) -> str:
        """Write the ``running`` commit and create the ref; return the commit id."""
        running, objects = build_run_commit(self.store, self.record, {}, self.code_commit)
        # Three small objects: loose files cost less than a pack of their own,
        # and the run's final pack keeps the pack count at one per run.
        for obj in objects:
            self.store.write_loose_object(obj)
        self.store.update_ref(self.ref, running.id, None)
        self.head = running.id
        self._journal = _Journal.create(self.store.state_dir, self.ref, running.id, self.code_commit)
        return running.id

    def add_step(self, entry: StepEntry) -> None:
        self.steps[entry.name] = entry.tree_id
        if entry.objects and sum(len(o.data) for o in entry.objects) > _DIRECT_PACK_BYTES:
            self.store.write_objects(entry.objects)
            entry = StepEntry(entry.name, entry.tree_id)
        self._pending.extend(entry.objects)
        if self._journal is not None:
            self._journal.append(entry)

    def finish(self, record: RunRecord) -> str:
        """Write everything as one pack and move the ref to the final commit."""
        self.record = record
        final, objects = build_run_commit(self.store, record, self.steps, self.code_commit)
        self.store.write_objects([*self._pending, *objects])
        self.store.update_ref(self.ref, final.id, self.head)
        self.head = final.id
        self._pending = []
        if self._journal is not None:
            self._journal.close_and_remove()
            self._journal = None
        consolidate_packs(self.store.root, self.store.pack_dir, self.store.state_dir)
        return final.id


# journal -------------------------------------------------------------------

_FRAME = struct.Struct(">I")


def _journal_path(state_dir: str, ref: str) -> str:
    return os.path.join(state_dir, "journal", ref.removeprefix(RUNS_PREFIX).replace("/", "__") + ".journal")


class _Journal:
    """Append-only frames; the writer holds an exclusive flock while it lives."""

    def __init__(self, path: str, handle: int) -> None:
        self.path = path
        self.handle = handle

    @classmethod
    def create(cls, state_dir: str, ref: str, running_commit: str, code_commit: str) -> _Journal:
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

    def append(self, entry: StepEntry) -> None:
        self._write(["step", entry.name, entry.tree_id, [[o.type_num, o.data] for o in entry.objects]])

    def close_and_remove(self) -> None:
        # Unlinked while still locked, so no recoverer can take it for abandoned.
        os.unlink(self.path)
        os.close(self.handle)


def _read_frames(path: str) -> Iterable[list[object]]:
    with open(path, "rb") as f:
        data = f.read()
    position = 0
    while position + _FRAME.size <= len(data):
        (length,) = _FRAME.unpack_from(data, position)
        start = position + _FRAME.size
        if start + length > len(data):
            return  # torn final write: that step did not finish recording
        yield msgpack.unpackb(data[start : start + length], raw=False)
        position = start + length


def run_is_live(state_dir: str, pipeline_name: str, run_name: str) -> bool:
    """True when a process on this machine is still recording the run."""
    path = _journal_path(state_dir, run_ref(pipeline_name, run_name))
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


def recover_abandoned_runs(store: GitStore) -> list[str]:
    """Turn journals whose writer died into ``crashed`` runs; return their refs."""
    directory = os.path.join(store.state_dir, "journal")
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    recovered = []
    for name in names:
        if not name.endswith(".journal"):
            continue
        path = os.path.join(directory, name)
        try:
            handle = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            if not os.path.exists(path):
                continue  # finished and removed while we waited
            ref = _recover_one(store, path)
            if ref:
                recovered.append(ref)
            os.unlink(path)
        finally:
            os.close(handle)
    return recovered


def _recover_one(store: GitStore, path: str) -> str | None:
    frames = list(_read_frames(path))
    if not frames or frames[0][0] != "run":
        return None
    _, ref, running_commit, code_commit, *_ = frames[0]
    assert isinstance(ref, str) and isinstance(running_commit, str) and isinstance(code_commit, str)
    if store.read_ref(ref) != running_commit:
        return None  # finished or recovered by someone else
    steps: dict[str, str] = {}
    objects: list[GitObject] = []
    for frame in frames[1:]:
        _, step_name, tree_id, raw_objects = frame
        assert isinstance(step_name, str) and isinstance(tree_id, str) and isinstance(raw_objects, list)
        steps[step_name] = tree_id
        objects.extend(make_object(type_num, data) for type_num, data in raw_objects)
    running_tree = parse_commit(store.read_object(running_commit))["tree"][0].decode()
    record_id = parse_tree(store.read_object(running_tree))["run.msgpack"][1]
    record = RunRecord.decode(store.read_object(record_id), where=f"run {ref}")
    record.status = "crashed"
    record.end_time = os.path.getmtime(path)
    record.error = "the process recording this run stopped before the run finished"
    final, run_objects = build_run_commit(store, record, steps, code_commit)
    store.write_objects([*objects, *run_objects])
    store.update_ref(ref, final.id, running_commit)
    return ref
