"""Keeping the run index in step with the refs, reading only what changed since the last look.

What holds runs, and how a change is noticed without reading every ref:

- run refs (``refs/mlops/runs/...``): per directory of loose refs, its stamp
  (inode, mtime, size), then per ref file; and the stamp of ``packed-refs``;
- archive refs (``refs/mlops/archive/...``): the same stamps; a new archive's
  listing is read once (a new root's, down to the archives not read before),
  one no ref reaches any more releases the runs it held;
- deletions: the team ledger's head and the local file's stamp.

Stamps are stored under ref names (``refs/mlops/runs/train/``), never paths,
so a copied or moved repository is read again correctly. Refs are read after
the index's write lock is taken, so a writer that moves a ref after we read it
indexes its run after our commit, not under it.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from mlops_lite.core.graph import reachable
from mlops_lite.core.log import LazyLogger
from mlops_lite.core.records import StepRecord
from mlops_lite.errors import MlopsLiteError, RecordError
from mlops_lite.store.archives import (
    ARCHIVE_BATCH,
    ARCHIVE_PREFIX,
    Listing,
    archive_tips,
    archive_tree,
    read_archive,
)
from mlops_lite.store.deletions import deleted_runs, local_deletions_path
from mlops_lite.store.index_db import (
    CACHE_INDEXES,
    INDIVIDUAL,
    INSERT_RUN_WITH_ID,
    LOOKUP_INDEXES,
    RUN_INDEXES,
    forget_ids,
    forget_settled,
    in_batches,
    insert_run,
    rollback,
)
from mlops_lite.store.index_rows import IndexedRun, from_record, listing_rows, unreadable
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import (
    RUN_RECORD,
    RUNS_PREFIX,
    parse_run_ref,
    read_run_commit,
    read_step_record,
)
from mlops_lite.store.ledgers import DELETED_REF
from mlops_lite.store.objects import COMMIT, TREE, GitObject, parse_tree
from mlops_lite.store.refs import DiskRefs, is_sha

__all__ = ["IndexSync", "StartOver", "complete_holders", "prefetch_objects"]

logger = LazyLogger(__name__)

# Past this many new rows, the runs table's indexes are dropped and built again
# after the load: 100,000 rows load in a quarter of the time.
_BULK: Final = 20_000
# sqlite's page cache during a bulk load, in KiB (negative: a size, not pages).
_BULK_CACHE_KIB: Final = -65536
# After forgetting this many runs the file is compacted: the index shrinks after a gc.
_VACUUM_AFTER: Final = 1_000
_PACKED: Final = "packed-refs"
_DELETIONS: Final = "deletions"


class StartOver(Exception):
    """The index cannot be brought up to date by steps (a deleted run came back)."""


@dataclass
class _Changes:
    """What may have changed since the last look."""

    candidates: set[str] = field(default_factory=set)  # run refs whose value may differ
    loose: dict[str, str | None] = field(default_factory=dict)  # loose ref -> stamp (None: gone)
    archives: bool = False  # archive refs must be listed again
    deletions: bool = False  # the deleted runs must be read again
    stamps: dict[str, str] = field(default_factory=dict)  # to store once applied
    vanished: list[str] = field(default_factory=list)  # stamps to drop
    packed: dict[str, str] | None = None  # packed-refs under refs/mlops/, once read


class IndexSync:
    """One refresh of a ``RunIndex``: find what changed, then apply it in one transaction."""

    def __init__(self, db: sqlite3.Connection, store: Store) -> None:
        self.db = db
        self.store = store
        self.forgotten = 0

    def run(self) -> None:
        """Bring the index up to date; ``StartOver`` when only a rebuild can."""
        refs = self.store.refs
        changes = self._detect_disk(refs) if isinstance(refs, DiskRefs) else self._detect_all()
        if changes is None:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            deleted = self._apply_deletions(changes)
            if changes.archives:
                forget_settled(self.db)
                self._apply_archives(set(archive_tips(self.store.refs)), deleted)
            self._apply_individual(changes, deleted)
            self._store_stamps(changes)
            self.db.execute("COMMIT")
        except BaseException:
            rollback(self.db)
            raise
        if self.forgotten >= _VACUUM_AFTER:
            try:
                self.db.execute("VACUUM")  # the file shrinks after a gc
            except sqlite3.OperationalError:
                pass  # another reader holds it: next time

    # detecting ----------------------------------------------------------------

    def _detect_all(self) -> _Changes:
        """Refs without files (the memory store): every run ref is a candidate."""
        changes = _Changes(archives=True, deletions=True)
        changes.candidates = set(self.store.refs.list(RUNS_PREFIX)) | self._individual_refs()
        return changes

    def _detect_disk(self, refs: DiskRefs) -> _Changes | None:
        stamps = dict(self.db.execute("SELECT path, stamp FROM stamps").fetchall())
        current: dict[str, str] = {}
        for prefix in (RUNS_PREFIX, ARCHIVE_PREFIX):
            for directory in refs.loose_dirs(prefix):
                current[refs.ref_prefix_of(directory)] = _stamp(directory)
        current[_PACKED] = _stamp(refs.packed_refs_path)
        deletions_file = (
            _stamp(local_deletions_path(self.store.state_dir)) if self.store.state_dir else "-"
        )
        current[_DELETIONS] = f"{refs.read(DELETED_REF) or '-'} {deletions_file}"
        changed = [key for key, stamp in current.items() if stamps.get(key) != stamp]
        vanished = [key for key in stamps if key not in current]
        if not changed and not vanished:
            return None
        changes = _Changes(stamps=current, vanished=vanished)
        packed_changed = _PACKED in changed
        changes.deletions = _DELETIONS in changed
        changes.archives = packed_changed or any(
            key.startswith(ARCHIVE_PREFIX) for key in changed + vanished
        )
        if packed_changed:
            changes.candidates.update(self._individual_refs())
            changes.packed = refs.read_packed("refs/mlops/")
            changes.candidates.update(ref for ref in changes.packed if ref.startswith(RUNS_PREFIX))
        for prefix in changed + vanished:
            if not prefix.startswith(RUNS_PREFIX) or not prefix.endswith("/"):
                continue
            self._detect_directory(refs, prefix, changes, rescan=packed_changed)
        return changes

    def _detect_directory(
        self, refs: DiskRefs, prefix: str, changes: _Changes, *, rescan: bool
    ) -> None:
        """The loose refs of one directory whose stamp changed: which ones changed."""
        # Only this directory's loose refs ("/" sorts just before "0").
        known = dict(
            self.db.execute(
                "SELECT ref, stamp FROM loose WHERE ref >= ? AND ref < ?",
                (prefix, prefix[:-1] + "0"),
            ).fetchall()
        )
        seen = set()
        directory = os.path.join(refs.common_dir, *prefix.rstrip("/").split("/"))
        for ref, stat in refs.loose_files(directory):
            seen.add(ref)
            stamp = f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"
            if known.get(ref) != stamp or rescan:
                changes.loose[ref] = stamp
                changes.candidates.add(ref)
        for ref in known:
            if ref.count("/") == prefix.count("/") and ref not in seen:
                changes.loose[ref] = None
                changes.candidates.add(ref)
        # A run indexed as it was recorded (``RunIndex.add_run``) has no loose stamp
        # yet: its ref going is seen only against the runs its own ref holds.
        for (ref,) in self.db.execute(
            "SELECT runs.ref FROM held JOIN runs ON runs.id = held.run "
            f"WHERE held.holder = {INDIVIDUAL} AND runs.ref >= ? AND runs.ref < ?",
            (prefix, prefix[:-1] + "0"),
        ).fetchall():
            if ref.count("/") == prefix.count("/") and ref not in seen:
                changes.candidates.add(ref)

    # applying -----------------------------------------------------------------

    def _apply_deletions(self, changes: _Changes) -> dict[str, str]:
        known = dict(self.db.execute("SELECT ref, sha FROM deleted").fetchall())
        if not changes.deletions:
            return known
        current = deleted_runs(self.store)
        if any(current.get(ref) != sha for ref, sha in known.items()):
            raise StartOver  # a run came back: whatever holds it must be read again
        added = {ref: sha for ref, sha in current.items() if ref not in known}
        if added:
            rows = self._rows_of(list(added))
            gone = [row[0] for ref, row in rows.items() if row[1] == added[ref]]
            self._forget_ids(gone)
            self.db.executemany("INSERT INTO deleted VALUES (?, ?)", list(added.items()))
        return current

    def _apply_archives(self, current: set[str], deleted: dict[str, str]) -> None:
        """Read the archive refs that are new (down through roots), forget what none holds now.

        An archive commit read once is remembered (``holders``), so an archive
        already listed costs nothing when a new root comes to hold it.
        """
        known: dict[str, int] = dict(self.db.execute("SELECT name, id FROM holders").fetchall())
        with _without_cycle_collection():
            self._load_archives(current, known, deleted)
        live = self._reachable({known[sha] for sha in current if sha in known})
        for holder in sorted(set(known.values()) - live):
            runs = [
                row[0]
                for row in self.db.execute("SELECT run FROM held WHERE holder = ?", (holder,))
            ]
            self.db.execute("DELETE FROM held WHERE holder = ?", (holder,))
            self.db.execute("DELETE FROM contains WHERE root = ? OR child = ?", (holder, holder))
            self.db.execute("DELETE FROM holders WHERE id = ?", (holder,))
            self._forget_unheld(runs)

    def _load_archives(
        self, current: set[str], known: dict[str, int], deleted: dict[str, str]
    ) -> None:
        """Read the archive commits not ``known`` yet and load their runs (``known`` grows)."""
        loader = _RowLoader(self.db, deleted)
        for tip in sorted(current - known.keys()):
            tree = archive_tree(
                self.store.read_object,
                tip,
                known=known,
                prefetch=lambda shas: prefetch_objects(self.store, shas, archives=True).read_object,
            )
            for sha, reason in tree.skipped.items():
                logger.warning("mlops-lite: archive %s cannot be read (%s): skipped", sha, reason)
                known[sha] = self._add_holder(sha)
            for sha, archive in tree.archives.items():
                known[sha] = self._add_holder(sha, complete=False)
                loader.add(known[sha], archive.listing)
            for sha in tree.roots:
                known[sha] = self._add_holder(sha)
            self.db.executemany(
                "INSERT OR IGNORE INTO contains VALUES (?, ?)",
                [
                    (known[sha], known[child])
                    for sha, root in tree.roots.items()
                    for child in root.children
                    if child in known
                ],
            )
        loader.insert()

    def _add_holder(self, sha: str, *, complete: bool = True) -> int:
        """A holder row for an archive commit (complete: no runs to load, a root or one skipped)."""
        cursor = self.db.execute(
            "INSERT INTO holders (name, complete) VALUES (?, ?)", (sha, int(complete))
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _reachable(self, tips: set[int]) -> set[int]:
        """The holders the archive refs reach: themselves, and everything their roots hold."""
        below: dict[int, list[int]] = {}
        for root, child in self.db.execute("SELECT root, child FROM contains"):
            below.setdefault(root, []).append(child)
        return reachable(tips, below)

    def _apply_individual(self, changes: _Changes, deleted: dict[str, str]) -> None:
        if not changes.candidates:
            return
        refs = self.store.refs
        rows = self._rows_of(sorted(changes.candidates))
        packed = changes.packed
        fresh_packed = packed is not None or not isinstance(refs, DiskRefs)
        to_index: list[tuple[str, str]] = []
        released: list[int] = []
        for ref in sorted(changes.candidates):
            sha = self._current_value(ref)
            if sha is None and isinstance(refs, DiskRefs):
                if packed is None:
                    packed = refs.read_packed("refs/mlops/")
                sha = packed.get(ref)
                if sha is None and not fresh_packed:
                    # `git pack-refs` may have moved it from its loose file into a
                    # packed-refs newer than the one read above: read that once more.
                    packed = refs.read_packed("refs/mlops/")
                    fresh_packed = True
                    sha = packed.get(ref)
            row = rows.get(ref)
            if sha is not None and deleted.get(ref) == sha:
                sha = None  # its ref is back (a plain `git fetch`): still deleted
            if sha is None:
                if row is not None and row[2]:
                    self.db.execute(
                        f"DELETE FROM held WHERE holder = {INDIVIDUAL} AND run = ?", (row[0],)
                    )
                    released.append(row[0])
            elif row is not None and row[1] == sha:
                if not row[2]:
                    self.db.execute("INSERT INTO held VALUES (?, ?)", (INDIVIDUAL, row[0]))
            else:
                to_index.append((ref, sha))
        self._forget_unheld(released)
        reader = prefetch_objects(self.store, [sha for _, sha in to_index])
        for ref, sha in to_index:
            indexed = _index_run(self.store, reader, ref, sha)
            if indexed is not None:
                insert_run(self.db, indexed, INDIVIDUAL)

    def _current_value(self, ref: str) -> str | None:
        refs = self.store.refs
        if isinstance(refs, DiskRefs):
            return refs.read_loose(ref)  # a loose ref file wins over packed-refs, as in git
        return refs.read(ref)

    def _store_stamps(self, changes: _Changes) -> None:
        for ref, stamp in changes.loose.items():
            if stamp is None:
                self.db.execute("DELETE FROM loose WHERE ref = ?", (ref,))
            else:
                self.db.execute("INSERT OR REPLACE INTO loose VALUES (?, ?)", (ref, stamp))
        for key in changes.vanished:
            self.db.execute("DELETE FROM stamps WHERE path = ?", (key,))
        self.db.executemany("INSERT OR REPLACE INTO stamps VALUES (?, ?)", changes.stamps.items())

    # helpers ----------------------------------------------------------------------

    def _rows_of(self, refs: list[str]) -> dict[str, tuple[int, str, bool]]:
        """``{ref: (run id, sha, held by its own ref)}`` of those listed."""
        found: dict[str, tuple[int, str, bool]] = {}
        for batch, marks in in_batches(refs):
            for ref, run, sha, own in self.db.execute(
                "SELECT runs.ref, runs.id, runs.sha, EXISTS (SELECT 1 FROM held WHERE "
                f"held.run = runs.id AND held.holder = {INDIVIDUAL}) "
                f"FROM runs WHERE runs.ref IN ({marks})",
                batch,
            ):
                found[ref] = (run, sha, bool(own))
        return found

    def _forget_unheld(self, runs: list[int]) -> None:
        unheld = [
            run
            for run in runs
            if self.db.execute("SELECT 1 FROM held WHERE run = ? LIMIT 1", (run,)).fetchone()
            is None
        ]
        self._forget_ids(unheld)

    def _forget_ids(self, runs: list[int]) -> None:
        forget_ids(self.db, runs)
        self.forgotten += len(runs)

    def _individual_refs(self) -> set[str]:
        return {
            row[0]
            for row in self.db.execute(
                f"SELECT runs.ref FROM held JOIN runs ON runs.id = held.run "
                f"WHERE held.holder = {INDIVIDUAL}"
            )
        }


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused: a fresh clone decodes millions of objects, none cyclic.

    Each allocation burst would otherwise start a collection that walks every
    listing decoded so far (0.4 s of a 100,000-run build).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _RowLoader:
    """The rows of the runs newly read archives hold, inserted in one bulk load.

    A fresh clone lists 100,000 archived runs: their rows are made in one pass,
    with ids given here (no look-up per archive to learn them), and inserted by
    one ``executemany`` per table, the runs table's indexes built after.
    """

    def __init__(self, db: sqlite3.Connection, deleted: dict[str, str]) -> None:
        self.db = db
        self.deleted = deleted
        self.had_runs = db.execute("SELECT EXISTS (SELECT 1 FROM runs)").fetchone()[0]
        self.next_id = (db.execute("SELECT max(id) FROM runs").fetchone()[0] or 0) + 1
        self.placed: dict[str, tuple[int, str]] = {}  # ref -> (run id, sha), this load's
        self.rows: list[tuple[Any, ...]] = []
        self.held: list[tuple[int, int]] = []  # (holder, run)
        # (holder, first run id, last + 1): an archive whose runs are all new here
        # holds a range of ids, inserted by sqlite from the runs table in one statement.
        self.held_ranges: list[tuple[int, int, int]] = []

    def add(self, holder: int, listing: Listing) -> None:
        """Hold the listed runs by ``holder``: a row for each run not listed yet."""
        placed = self.placed
        unplaced = [ref for ref in listing.refs if ref not in placed]
        existing = self._existing(unplaced) if self.had_runs else {}
        if (
            not existing
            and len(unplaced) == len(listing)
            and self.deleted.keys().isdisjoint(listing.refs)
        ):
            # Every run is new here (a fresh clone's case): rows numbered in one C pass.
            first = self.next_id
            self.next_id += len(listing)
            runs = range(first, self.next_id)
            placed.update(zip(listing.refs, zip(runs, listing.shas, strict=True), strict=True))
            self.rows.extend(listing_rows(listing, ids=runs))
            self.held_ranges.append((holder, first, self.next_id))
            return
        for indexed in listing_rows(listing):
            ref, sha = indexed[0], indexed[1]
            if self.deleted.get(ref) == sha:
                continue
            row = placed.get(ref) or existing.get(ref)
            if row is None:
                run = self.next_id
                self.next_id += 1
                placed[ref] = (run, sha)
                self.rows.append((run, *indexed))
                self.held.append((holder, run))
            elif row[1] == sha:
                self.held.append((holder, row[0]))
            # else: another run under the same name is listed already; runs are write-once

    def insert(self) -> None:
        """Insert the rows gathered (in the open transaction)."""
        bulk = len(self.rows) >= _BULK
        with _indexes_built_after(self.db, RUN_INDEXES, bulk=bulk, dropped=LOOKUP_INDEXES):
            self.db.executemany(INSERT_RUN_WITH_ID, self.rows)
        self._insert_held()

    def _insert_held(self) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO held SELECT ?, id FROM runs WHERE id >= ? AND id < ?",
            self.held_ranges,
        )
        self.db.executemany("INSERT OR IGNORE INTO held VALUES (?, ?)", self.held)

    def _existing(self, refs: list[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        for batch, marks in in_batches(refs):
            for ref, run, sha in self.db.execute(
                f"SELECT ref, id, sha FROM runs WHERE ref IN ({marks})", batch
            ):
                found[ref] = (run, sha)
        return found


@contextmanager
def _indexes_built_after(
    db: sqlite3.Connection,
    indexes: Mapping[str, str],
    *,
    bulk: bool,
    dropped: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """With ``bulk``, rows inserted inside go in without ``indexes``, built once after.

    The ``dropped`` indexes go for the load too, left for the first query that needs one.

    A bulk load of 100,000 rows is four times faster so. The page cache is
    larger for the load and the index builds only: queries keep sqlite's
    default, and its memory. In the caller's transaction: an error rolls the
    dropped indexes back with the rest.
    """
    if not bulk:
        yield
        return
    for name in [*indexes, *(dropped or {})]:
        db.execute(f"DROP INDEX IF EXISTS {name}")
    cache_size = db.execute("PRAGMA cache_size").fetchone()[0]
    db.execute(f"PRAGMA cache_size={_BULK_CACHE_KIB}")
    try:
        yield
        for statement in indexes.values():
            db.execute(f"CREATE {statement}")
    finally:
        db.execute(f"PRAGMA cache_size={int(cache_size)}")


def complete_holders(db: sqlite3.Connection, store: Store, pending: list[tuple[int, str]]) -> None:
    """Load the metric columns and cache keys of the archived runs listed without them.

    Loading as many as the index holds already (a fresh clone's first cache
    look-up: a million cache keys) builds the cache's indexes after, once.
    """
    reader = prefetch_objects(store, [name for _, name in pending], archives=True)
    db.execute("BEGIN IMMEDIATE")
    try:
        complete = db.execute("SELECT count(*) FROM holders WHERE complete = 1").fetchone()[0]
        bulk = len(pending) * ARCHIVE_BATCH >= _BULK and len(pending) >= complete
        with _indexes_built_after(db, CACHE_INDEXES, bulk=bulk):
            _complete_all(db, reader, pending)
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise


def _complete_all(db: sqlite3.Connection, reader: Any, pending: list[tuple[int, str]]) -> None:
    """Load each pending holder's archive rows and mark it complete (in the open transaction)."""
    for holder, sha in pending:
        try:
            listing = read_archive(reader.read_object, sha).listing.complete()
        except MlopsLiteError as error:
            # Its runs were listed from the columns that could be read: they stay
            # listed, without metric columns or cache keys (a cache miss, no harm).
            logger.warning(
                "mlops-lite: archive %s: the metric columns and cache keys of its runs "
                "cannot be read (%s): listed without them",
                sha,
                error,
            )
        else:
            _complete_archive(db, holder, listing)
        db.execute("UPDATE holders SET complete = 1 WHERE id = ?", (holder,))


def _complete_archive(db: sqlite3.Connection, holder: int, listing: Listing) -> None:
    incomplete = {
        ref: run
        for run, ref in db.execute(
            "SELECT runs.id, runs.ref FROM held JOIN runs ON runs.id = held.run "
            "WHERE held.holder = ? AND runs.complete = 0",
            (holder,),
        )
    }
    if not incomplete:
        return
    ids = [incomplete.get(ref) for ref in listing.refs]
    db.executemany(
        "INSERT OR REPLACE INTO run_values VALUES (?, ?, ?, ?)",
        [
            (ids[position], name, value, number)
            for position, name, value, number in zip(
                listing.value_runs,
                listing.value_names,
                listing.value_data,
                listing.value_numbers,
                strict=True,
            )
            if ids[position] is not None
        ],
    )
    db.executemany(
        "INSERT INTO cache VALUES (?, ?, ?)",
        [
            (key, ids[position], step)
            for position, key, step in zip(
                listing.cache_runs, listing.cache_keys, listing.cache_steps, strict=True
            )
            if ids[position] is not None
        ],
    )
    done = list(incomplete.values())
    for batch, marks in in_batches(done):
        db.execute(f"UPDATE runs SET complete = 1 WHERE id IN ({marks})", batch)


# reading runs ------------------------------------------------------------------


class _Prefetched:
    """Objects read in bulk beforehand, more on their way, and the store behind them for the rest.

    ``pending`` streams the last kind read (records, listings) in the order
    readers ask for them: each is taken when asked for, and git reads the next
    ones meanwhile. The stream ends with this reader (or once read to its end).
    """

    def __init__(
        self, store: Store, objects: dict[str, GitObject], pending: Iterator[GitObject]
    ) -> None:
        self._store = store
        self._objects = objects
        self._pending: Iterator[GitObject] | None = pending

    def read_object(self, object_id: str, kind: int | None = None) -> bytes:
        found = self._objects.get(object_id)
        while found is None and self._pending is not None:
            streamed = next(self._pending, None)
            if streamed is None:
                self._pending = None
            else:
                self._objects[streamed.id] = streamed
                found = streamed if streamed.id == object_id else None
        if found is None or (kind is not None and found.type_num != kind):
            return self._store.read_object(object_id, kind)  # it raises the right error
        return bytes(found.data)


def prefetch_objects(store: Store, shas: list[str], *, archives: bool = False) -> Any:
    """Read many commits, their trees and their one record (or listing) in three bulk passes.

    Records and listings are streamed in the order of ``shas``, as they are read.
    """
    if len(shas) < (1 if archives else 100):
        return store
    objects = store.read_objects(shas)
    trees = {}
    for sha in shas:
        found = objects.get(sha)
        # git writes a commit's tree on its first line. Only a hint of what to read
        # next: readers parse the whole commit (an archive's 100 parents) once, later.
        if found is not None and found.type_num == COMMIT and found.data[:5] == b"tree ":
            trees[sha] = bytes(found.data[5:45]).decode("ascii", "replace")
    objects.update(store.read_objects(sorted({t for t in trees.values() if is_sha(t)})))
    blobs: dict[str, None] = {}  # in the order of their commits
    for tree_id in trees.values():
        found = objects.get(tree_id)
        if found is None or found.type_num != TREE:
            continue
        try:
            entries = parse_tree(bytes(found.data))
        except RecordError:
            continue
        entry = (
            entries.get(RUN_RECORD)
            or entries.get("runs.msgpack")
            or entries.get("archives.msgpack")
        )
        if entry is not None:
            blobs[entry[1]] = None
    return _Prefetched(store, objects, store.stream_objects(list(blobs)))


def _index_run(store: Store, reader: Any, ref: str, sha: str) -> IndexedRun | None:
    """What the index holds of the run at ``sha``, or an ``unreadable`` row saying why."""
    parsed = parse_run_ref(ref)
    if parsed is None:
        return None  # not a name a run can have: never listed
    try:
        run = read_run_commit(reader.read_object, sha, with_steps=False)
        if (run.record.pipeline_name, run.record.run_name) != parsed:
            raise RecordError(
                f"its record names run {run.record.pipeline_name}/{run.record.run_name}, "
                f"not the {parsed[0]}/{parsed[1]} it is stored as"
            )
        step_records: dict[str, StepRecord] = {}
        if run.record.step_summary:
            for name, summary in run.record.step_summary.items():
                step_records[name] = StepRecord(
                    name=name, function="", status=summary.status, cache_key=summary.cache_key,
                    outputs=summary.outputs, end_time=summary.end_time,
                    metadata=summary.metadata,
                )  # fmt: skip
        else:  # a crashed run's record, written before its steps finished
            for name, tree_id in read_run_commit(store.read_object, sha).steps.items():
                step_records[name] = read_step_record(
                    store.read_object, tree_id, where=f"step {name} of {ref}"
                )
    except MlopsLiteError as error:
        # A run this version cannot read (a newer schema, missing objects,
        # a malformed record) is still listed, as "unreadable", with the reason.
        return unreadable(ref, sha, str(error))
    return from_record(ref, sha, run.record, step_records, run.code_commit)


# A directory's mtime ticks coarsely (a few ms on ext4): a change in the same
# tick as our look leaves it unchanged. As git does for its index, a stamp this
# recent is not trusted: it is stored as one that never matches, so the next
# refresh looks at that directory again.
_RACY_NS: Final = 2_000_000_000


def _stamp(path: str) -> str:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return "missing"
    if time.time_ns() - stat.st_mtime_ns < _RACY_NS:
        return f"racy:{time.time_ns()}"
    return f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"
