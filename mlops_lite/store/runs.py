"""Recording a run: the writer that moves its ref, and the recovery of abandoned runs.

The ref first points at a commit with status ``running``; each recorded step
goes to the journal (one append, no git work); ``finish`` writes every object as
one pack and moves the ref once. A journal whose writer died is turned into a
``crashed`` run by the next writer (``recover_abandoned_runs``).

Every pack is written with a ``.keep`` (``keeps.py``) and released only once
the ref reaches it, so ``git gc --prune=now`` or ``git repack -a -d`` running
meanwhile cannot drop a run's objects; the ``running`` commit's keep lasts as
long as the ref points at it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from typing import Final, Literal, Protocol

from mlops_lite.core.hashing import content_digest
from mlops_lite.core.ids import ArtifactId, CommitId, ObjectId
from mlops_lite.core.log import LazyLogger
from mlops_lite.core.payload import Payload, output_too_large
from mlops_lite.core.records import OutputRecord, RunRecord, StepRecord
from mlops_lite.errors import MissingObjectError, MlopsLiteError, RecordError
from mlops_lite.store.artifacts import build_artifact
from mlops_lite.store.interface import Store
from mlops_lite.store.journal import (
    Journal,
    JournalEntry,
    journal_directory,
    read_journal,
    set_aside,
)
from mlops_lite.store.keeps import Keep
from mlops_lite.store.layout import (
    RUN_RECORD,
    build_run_commit,
    build_step_tree,
    read_tree_blob,
    run_ref,
)
from mlops_lite.store.objects import COMMIT, GitObject, make_object
from mlops_lite.store.provenance import remember_recorded
from mlops_lite.store.signing import sign_commit, signing_enabled

__all__ = ["ArtifactPayload", "RunWriter", "recover_abandoned_runs"]

# Steps whose objects exceed this go straight into a pack of their own instead of
# the journal: big artifacts are then written once, not twice.
_DIRECT_PACK_BYTES: Final = 8 * 1024 * 1024


class ArtifactPayload(Protocol):
    """A step output as bytes, with how it was materialized."""

    @property
    def payload(self) -> bytes | Payload:
        """The bytes to store (a ``Payload``: in pieces, read where they lie)."""

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
        # Keeps on packs no ref reaches yet, released once the final commit is in place.
        self._keeps: list[Keep] = []
        self.head: str | None = None

    def start(self) -> CommitId:
        """Write the ``running`` commit and create the ref; return the commit id."""
        running, objects = build_run_commit(self.store.identity, self.record, {}, self.code_commit)
        # Not fsynced, as git does not fsync loose objects: losing a running
        # commit to a power cut loses no finished step (those are in the journal).
        keep = self.store.write_objects(
            objects, ref=self.ref, while_ref_is=running.id, durable=False
        )
        try:
            remember_recorded(self.store, running.id)
            self.store.refs.compare_and_swap(self.ref, None, running.id)
        except BaseException:
            keep.release()
            raise
        self._keeps.append(keep)
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

        ``payloads`` are new outputs, stored as artifacts and added to ``record.outputs``
        with the digest every later load is checked against; outputs already in
        ``record.outputs`` (a cache hit) are referenced as they are.
        """
        objects: list[GitObject] = []

        def spill(chunks: list[GitObject]) -> None:
            # Kept until the run is recorded, like a step's own pack below.
            self._keeps.append(self.store.write_objects(chunks, ref=self.ref))

        for name, output in (payloads or {}).items():
            try:
                artifact_tree, artifact_objects = build_artifact(
                    output.payload,
                    materializer=output.materializer,
                    materializer_version=output.materializer_version,
                    type_name=output.type_name,
                    uses_pickle=output.uses_pickle,
                    files=output.stores_files,
                    chunk_store=self.store.chunk_store,
                    spill=spill,
                )
            except MemoryError:
                raise output_too_large(
                    record.name, name, len(output.payload), "recording it"
                ) from None
            objects.extend(artifact_objects)
            record.outputs[name] = OutputRecord(
                artifact_id=ArtifactId(artifact_tree.id),
                materializer=output.materializer,
                materializer_version=output.materializer_version,
                type_name=output.type_name,
                size=len(output.payload),
                uses_pickle=output.uses_pickle,
                digest=content_digest(output.payload),
            )
        outputs = {name: output.artifact_id for name, output in record.outputs.items()}
        step_tree, step_objects = build_step_tree(record, logs, outputs)
        objects.extend(step_objects)
        self.steps[record.name] = ObjectId(step_tree.id)
        if sum(len(o.data) for o in objects) > _DIRECT_PACK_BYTES:
            # Kept until the run is recorded, even if this process dies: the
            # journal's recovery needs these objects.
            try:
                self._keeps.append(self.store.write_objects(objects, ref=self.ref))
            except MemoryError:
                if not payloads:
                    raise
                name, output = max(payloads.items(), key=lambda item: len(item[1].payload))
                raise output_too_large(
                    record.name, name, len(output.payload), "recording it"
                ) from None
            objects = []
        self._pending.extend(objects)
        if self._journal is not None:
            self._journal.append(JournalEntry(record.name, step_tree.id, objects))

    def take_pending(self) -> list[GitObject]:
        """The objects of the steps recorded so far, not yet written: the caller writes them.

        For a ref other than the run's that must name them before the run ends
        (a named output's artifact version), written in one pack with its commit.
        That pack's keep goes to ``hold``: only this run's final commit reaches
        the step trees in it. Objects the caller did not write go to ``put_back``.
        """
        taken, self._pending = self._pending, []
        return taken

    def hold(self, keep: Keep) -> None:
        """Release ``keep`` only once the run's final commit is in place (``finish``)."""
        self._keeps.append(keep)

    def put_back(self, objects: list[GitObject]) -> None:
        """Objects from ``take_pending`` that were not written: ``finish`` writes them."""
        self._pending.extend(objects)

    def finish(self, record: RunRecord) -> CommitId:
        """Write everything as one pack and move the ref to the final commit."""
        self.record = record
        final, objects = build_run_commit(self.store.identity, record, self.steps, self.code_commit)
        final_id, keeps = self._write_final(final, [*self._pending, *objects])
        try:
            remember_recorded(self.store, final_id)
            self.store.refs.compare_and_swap(self.ref, self.head, final_id)
        finally:
            # Reached by the ref now, or garbage (the journal still holds the steps).
            for keep in keeps:
                keep.release()
        self.head = final_id
        self._pending = []
        if self._journal is not None:
            self._journal.close_and_remove()
            self._journal = None
        # The running commit's pack is unreachable from now on, like a deleted
        # branch's commits; it is not deleted here, since a git command running now
        # may have read the ref a moment ago. `git gc` keeps it in a cruft pack
        # (gc.cruftPacks, set by maintenance.configure_repository) and prunes it later.
        for earlier in self._keeps:
            earlier.release()
        self._keeps = []
        return CommitId(final_id)

    def _write_final(self, final: GitObject, objects: list[GitObject]) -> tuple[str, list[Keep]]:
        """Write the final commit and everything it needs, kept until the ref moves.

        Returns the commit's id (signed, when asked to) and the keeps to release.
        """
        if not signing_enabled(self.store):
            return final.id, [self.store.write_objects(objects, ref=self.ref)]
        # git makes the signed twin of the commit from its tree and parent, so
        # those go first and our unsigned commit is written only if signing fails.
        keeps = [self.store.write_objects([o for o in objects if o is not final], ref=self.ref)]
        signed = sign_commit(self.store.root, final)
        if signed is None:
            keeps.append(self.store.write_objects([final], ref=self.ref))
            return final.id, keeps
        # git wrote the signed commit as a loose object, which `git gc --prune=now`
        # could drop before the ref exists: a kept copy protects it.
        signed_commit = make_object(COMMIT, self.store.read_object(signed, COMMIT))
        keeps.append(self.store.write_objects([signed_commit], ref=self.ref))
        return signed, keeps


# How long recovering a dead writer's run waits for its ref's lock: recovery is
# housekeeping, and must never hold up the pipeline that happens to do it.
_RECOVERY_LOCK_TIMEOUT: Final = 0.5

logger = LazyLogger(__name__)


def recover_abandoned_runs(store: Store) -> None:
    """Turn journals whose writer died into ``crashed`` runs; never fails the caller.

    A journal that cannot be read is set aside (``journal/damaged/``), one whose
    run cannot be recorded now (its ref is locked, the disk is full) is left for
    the next writer, and stale keeps of dead writers are swept.
    """
    if store.state_dir is None:
        return
    directory = journal_directory(store.state_dir)
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        names = []
    except OSError as error:
        logger.warning("mlops-lite: cannot look for abandoned runs in %s: %s", directory, error)
        return
    for name in names:
        if not name.endswith(".journal"):
            continue
        path = os.path.join(directory, name)
        try:
            _recover_journal(store, path)
        except (MlopsLiteError, OSError) as error:
            logger.warning(
                "mlops-lite: could not recover the abandoned run of %s yet (%s); "
                "it stays as it is and a later run tries again",
                path,
                error,
            )
    try:
        store.sweep_keeps()
    except OSError:
        pass


def _recover_journal(store: Store, path: str) -> None:
    assert store.state_dir is not None
    try:
        handle = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # its writer is alive
        if not os.path.exists(path):
            return  # finished and removed while we waited
        outcome = _recover_one(store, path)
        if outcome == "recovered":
            os.unlink(path)
        else:
            # Nothing is deleted that could not be read: it stays for whoever looks.
            kept = set_aside(path, store.state_dir)
            logger.warning(
                "mlops-lite: the journal %s was damaged (%s) and was moved to %s",
                path,
                "its run recovered up to the damage" if outcome == "partly" else "unusable",
                kept,
            )
    finally:
        os.close(handle)


def _recover_one(store: Store, path: str) -> Literal["recovered", "partly", "unusable"]:
    """Record a dead writer's run as ``crashed``, from as much of its journal as decodes."""
    journal = read_journal(path)
    if journal is None:
        return "unusable"
    header = journal.header
    if store.refs.read(header.ref) != header.running_commit:
        store.release_keeps(header.ref)
        return "recovered"  # finished or recovered by someone else
    try:
        record = RunRecord.decode(
            read_tree_blob(store.read_object, header.running_commit, RUN_RECORD),
            where=f"run {header.ref}",
        )
    except (RecordError, MissingObjectError):
        return "unusable"
    steps: dict[str, ObjectId] = {}
    objects: list[GitObject] = []
    for entry in journal.entries:
        written = {obj.id for obj in entry.objects}
        # A step whose tree is neither in the journal nor in git (its direct
        # pack was lost) would leave the run pointing at nothing: leave it out.
        if entry.tree_id in written or store.has_object(entry.tree_id):
            steps[entry.step_name] = ObjectId(entry.tree_id)
            objects.extend(entry.objects)
    record.status = "crashed"
    record.end_time = os.path.getmtime(path)
    record.error = "the process recording this run stopped before the run finished"
    if journal.damaged:
        record.error += "; its journal was damaged, so later steps may be missing"
    final, run_objects = build_run_commit(store.identity, record, steps, header.code_commit)
    keep = store.write_objects([*objects, *run_objects], ref=header.ref)
    try:
        remember_recorded(store, final.id)
        store.refs.compare_and_swap(
            header.ref, header.running_commit, final.id, lock_timeout=_RECOVERY_LOCK_TIMEOUT
        )
    finally:
        keep.release()
    store.release_keeps(header.ref)
    return "partly" if journal.damaged else "recovered"
