"""Recording a run: the writer that moves its ref, and the recovery of abandoned runs.

The ref first points at a commit with status ``running``; each recorded step
goes to the journal (one append, no git work); ``finish`` writes every object as
one pack and moves the ref once. A journal whose writer died is turned into a
``crashed`` run by the next writer (``recover_abandoned_runs``).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from typing import Final, Protocol

from mlops_lite.core.ids import ArtifactId, CommitId, ObjectId
from mlops_lite.core.records import OutputRecord, RunRecord, StepRecord
from mlops_lite.errors import MlopsLiteError
from mlops_lite.store.artifacts import build_artifact
from mlops_lite.store.interface import Store
from mlops_lite.store.journal import Journal, JournalEntry, journal_directory, read_journal
from mlops_lite.store.layout import (
    RUN_RECORD,
    build_run_commit,
    build_step_tree,
    read_tree_blob,
    run_ref,
)
from mlops_lite.store.objects import GitObject
from mlops_lite.store.provenance import remember_recorded
from mlops_lite.store.signing import sign_commit, signing_enabled

__all__ = ["ArtifactPayload", "RunWriter", "recover_abandoned_runs"]

# Steps whose objects exceed this go straight into a pack of their own instead of
# the journal: big artifacts are then written once, not twice.
_DIRECT_PACK_BYTES: Final = 8 * 1024 * 1024


class ArtifactPayload(Protocol):
    """A step output as bytes, with how it was materialized."""

    @property
    def payload(self) -> bytes:
        """The bytes to store."""

    @property
    def materializer(self) -> str:
        """The name of the materializer that wrote them."""

    @property
    def materializer_version(self) -> int:
        """Its format version."""

    @property
    def type_name(self) -> str:
        """The value's type, ``module.QualName``."""

    @property
    def uses_pickle(self) -> bool:
        """Whether loading the bytes unpickles."""

    @property
    def stores_files(self) -> bool:
        """Whether the bytes are a directory's files, kept as a git tree."""


class RunWriter:
    """Records one run; the only code that moves a run's ref."""

    def __init__(self, store: Store, record: RunRecord, code_commit: str) -> None:
        self.store = store
        self.record = record
        self.code_commit = code_commit
        self.ref = run_ref(record.pipeline_name, record.run_name)
        self.steps: dict[str, ObjectId] = {}
        self._pending: list[GitObject] = []
        self._journal: Journal | None = None
        self.head: str | None = None

    def start(self) -> CommitId:
        """Write the ``running`` commit and create the ref; return the commit id."""
        running, objects = build_run_commit(self.store.identity, self.record, {}, self.code_commit)
        self.store.write_objects(objects)
        remember_recorded(self.store, running.id)
        self.store.refs.compare_and_swap(self.ref, None, running.id)
        self.head = running.id
        if self.store.state_dir is not None:
            self._journal = Journal.create(
                self.store.state_dir, self.ref, running.id, self.code_commit
            )
        return CommitId(running.id)

    def record_step(
        self,
        record: StepRecord,
        logs: str = "",
        payloads: Mapping[str, ArtifactPayload] | None = None,
    ) -> None:
        """Record one step.

        ``payloads`` are new outputs, stored as artifacts and added to ``record.outputs``;
        outputs already in ``record.outputs`` (a cache hit) are referenced as they are.
        """
        objects: list[GitObject] = []
        for name, output in (payloads or {}).items():
            artifact_tree, artifact_objects = build_artifact(
                output.payload,
                materializer=output.materializer,
                materializer_version=output.materializer_version,
                type_name=output.type_name,
                uses_pickle=output.uses_pickle,
                files=output.stores_files,
            )
            objects.extend(artifact_objects)
            record.outputs[name] = OutputRecord(
                artifact_id=ArtifactId(artifact_tree.id),
                materializer=output.materializer,
                materializer_version=output.materializer_version,
                type_name=output.type_name,
                size=len(output.payload),
                uses_pickle=output.uses_pickle,
            )
        outputs = {name: output.artifact_id for name, output in record.outputs.items()}
        step_tree, step_objects = build_step_tree(record, logs, outputs)
        objects.extend(step_objects)
        self.steps[record.name] = ObjectId(step_tree.id)
        if sum(len(o.data) for o in objects) > _DIRECT_PACK_BYTES:
            self.store.write_objects(objects)
            objects = []
        self._pending.extend(objects)
        if self._journal is not None:
            self._journal.append(JournalEntry(record.name, step_tree.id, objects))

    def take_pending(self) -> list[GitObject]:
        """The objects of the steps recorded so far, not yet written: the caller writes them.

        For a ref other than the run's that must name them before the run ends
        (a named output's artifact version), written in one pack with its commit.
        """
        taken, self._pending = self._pending, []
        return taken

    def finish(self, record: RunRecord) -> CommitId:
        """Write everything as one pack and move the ref to the final commit."""
        self.record = record
        final, objects = build_run_commit(self.store.identity, record, self.steps, self.code_commit)
        final_id = self._write_final(final, [*self._pending, *objects])
        remember_recorded(self.store, final_id)
        self.store.refs.compare_and_swap(self.ref, self.head, final_id)
        self.head = final_id
        self._pending = []
        if self._journal is not None:
            self._journal.close_and_remove()
            self._journal = None
        self.store.maintain()
        return CommitId(final_id)

    def _write_final(self, final: GitObject, objects: list[GitObject]) -> str:
        """Write the final commit and everything it needs; its id (signed, when asked to)."""
        if not signing_enabled(self.store):
            self.store.write_objects(objects)
            return final.id
        # git makes the signed twin of the commit from its tree and parent, so
        # those go first and our unsigned commit is written only if signing fails.
        self.store.write_objects([obj for obj in objects if obj is not final])
        signed = sign_commit(self.store.root, final)
        if signed is None:
            self.store.write_objects([final])
            return final.id
        return signed


def recover_abandoned_runs(store: Store) -> None:
    """Turn journals whose writer died into ``crashed`` runs."""
    if store.state_dir is None:
        return
    directory = journal_directory(store.state_dir)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
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
            _recover_one(store, path)
            os.unlink(path)
        finally:
            os.close(handle)


def _recover_one(store: Store, path: str) -> None:
    journal = read_journal(path)
    if journal is None:
        return
    header, entries = journal
    if store.refs.read(header.ref) != header.running_commit:
        return  # finished or recovered by someone else
    try:
        record = RunRecord.decode(
            read_tree_blob(store.read_object, header.running_commit, RUN_RECORD),
            where=f"run {header.ref}",
        )
    except MlopsLiteError:
        return
    steps = {entry.step_name: ObjectId(entry.tree_id) for entry in entries}
    objects = [obj for entry in entries for obj in entry.objects]
    record.status = "crashed"
    record.end_time = os.path.getmtime(path)
    record.error = "the process recording this run stopped before the run finished"
    final, run_objects = build_run_commit(store.identity, record, steps, header.code_commit)
    store.write_objects([*objects, *run_objects])
    remember_recorded(store, final.id)
    store.refs.compare_and_swap(header.ref, header.running_commit, final.id)
