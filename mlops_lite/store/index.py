"""The derived local index of runs and cache entries (``.git/mlops-lite/index.sqlite3``).

The refs are the truth; this index only makes listing and cache look-ups fast.
It is refreshed from the refs that changed since it last looked — per directory
of loose refs (by stamp, then per ref file) and the packed-refs file — so a
refresh after one new run reads one ref, not all of them. It is rebuilt from
scratch when missing or damaged, and never pushed. A store without a state
directory (the memory store) keeps it in memory and compares all run refs.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Final, Protocol

from mlops_lite.core.columns import Column, is_number, run_columns
from mlops_lite.core.ids import CacheKey, CommitId
from mlops_lite.core.records import OutputRecord, RunRecord, StepRecord, pack_value, unpack_value
from mlops_lite.core.status import FINISHED_STEP_STATUSES
from mlops_lite.errors import MlopsLiteError, RecordError
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import (
    RUN_RECORD,
    RUNS_PREFIX,
    parse_run_ref,
    read_run_commit,
    read_step_record,
)
from mlops_lite.store.objects import COMMIT, TREE, GitObject, parse_commit, parse_tree
from mlops_lite.store.refs import DiskRefs, is_sha

__all__ = ["CacheHit", "RunIndex", "RunRow", "decode_outputs", "encode_outputs"]

logger = logging.getLogger(__name__)

_INDEX_VERSION: Final = 3

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS runs (
    ref TEXT PRIMARY KEY, sha TEXT NOT NULL, pipeline TEXT NOT NULL, run_name TEXT NOT NULL,
    status TEXT NOT NULL, start_time REAL, end_time REAL, code_commit TEXT, author TEXT,
    host TEXT, reason TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (start_time DESC);
CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, start_time DESC);
CREATE INDEX IF NOT EXISTS runs_by_sha ON runs (sha);
CREATE INDEX IF NOT EXISTS runs_by_code ON runs (code_commit);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, start_time DESC);
CREATE INDEX IF NOT EXISTS runs_by_name ON runs (run_name);
CREATE TABLE IF NOT EXISTS cache (
    cache_key TEXT NOT NULL, ref TEXT NOT NULL, step TEXT NOT NULL, outputs BLOB NOT NULL,
    end_time REAL, PRIMARY KEY (cache_key, ref, step)
);
CREATE INDEX IF NOT EXISTS cache_by_ref ON cache (ref);
CREATE INDEX IF NOT EXISTS cache_by_key ON cache (cache_key, end_time);
-- Each run's parameters and metrics (core/columns.py), so listings show them as columns
-- without reading a record per run. ``number`` holds numeric values, for sorting.
CREATE TABLE IF NOT EXISTS run_values (
    ref TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL, number REAL,
    PRIMARY KEY (ref, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stamps (path TEXT PRIMARY KEY, stamp TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS loose (ref TEXT PRIMARY KEY, stamp TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run as the index lists it."""

    ref: str
    sha: str
    pipeline: str
    run_name: str
    status: str
    start_time: float | None
    end_time: float | None
    code_commit: str | None
    author: str | None
    host: str | None
    reason: str | None = None  # why an ``unreadable`` run cannot be read


@dataclass(frozen=True, slots=True)
class CacheHit:
    """An earlier execution of a step with the same cache key, and where it is recorded."""

    ref: str
    step: str
    outputs: dict[str, OutputRecord]
    sha: str | None  # the run commit the entry was read from: what trust is decided on

    @property
    def pipeline(self) -> str:
        """The pipeline of the run that holds the hit."""
        return self.ref.removeprefix(RUNS_PREFIX).rsplit("/", 1)[0]

    @property
    def run_name(self) -> str:
        """The run that holds the hit."""
        return self.ref.rsplit("/", 1)[1]


class _ObjectReader(Protocol):
    def read_object(self, object_id: str, kind: int | None = None) -> bytes: ...


class _Prefetched:
    """Objects read in bulk beforehand, with the store behind them for the rest."""

    def __init__(self, store: Store, objects: dict[str, GitObject]) -> None:
        self._store = store
        self._objects = objects

    def read_object(self, object_id: str, kind: int | None = None) -> bytes:
        found = self._objects.get(object_id)
        if found is None or (kind is not None and found.type_num != kind):
            return self._store.read_object(object_id, kind)  # it raises the right error
        return bytes(found.data)


def _prefetch_runs(store: Store, shas: list[str]) -> _ObjectReader:
    """Read many run commits, their trees and records in three bulk passes."""
    if len(shas) < 100:
        return store
    objects = store.read_objects(shas)
    trees = {}
    for sha in shas:
        found = objects.get(sha)
        if found is not None and found.type_num == COMMIT:
            try:
                trees[sha] = parse_commit(bytes(found.data))["tree"][0].decode("ascii", "replace")
            except (KeyError, IndexError):
                continue
    objects.update(store.read_objects(sorted({t for t in trees.values() if is_sha(t)})))
    records = []
    for tree_id in set(trees.values()):
        found = objects.get(tree_id)
        if found is None or found.type_num != TREE:
            continue
        try:
            entry = parse_tree(bytes(found.data)).get(RUN_RECORD)
        except RecordError:
            continue
        if entry is not None:
            records.append(entry[1])
    objects.update(store.read_objects(records))
    return _Prefetched(store, objects)


def encode_outputs(outputs: dict[str, OutputRecord]) -> bytes:
    """A cache row's outputs column."""
    return pack_value({name: output.to_dict() for name, output in outputs.items()})


def decode_outputs(data: bytes) -> dict[str, OutputRecord]:
    """A cache row's outputs column read back; ``RecordError`` when it is damaged."""
    value = unpack_value(data, where="an index cache row")
    if not isinstance(value, dict):
        raise RecordError("an index cache row is damaged")
    return {
        str(name): OutputRecord.from_dict(info, where="an index cache row")
        for name, info in value.items()
    }


class RunIndex:
    """sqlite index of run refs and cache keys, kept in step with the refs.

    Derived data, so it never stops anyone: a damaged index file is rebuilt
    from the refs, and a repository that cannot be written (a read-only mount,
    a full disk) gets its index in memory instead.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = (
            os.path.join(store.state_dir, "index.sqlite3")
            if store.state_dir is not None
            else ":memory:"
        )
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            try:
                assert self.store.state_dir is not None
                os.makedirs(self.store.state_dir, exist_ok=True)
                try:
                    return self._open(self.path)
                except sqlite3.DatabaseError as error:
                    if isinstance(error, sqlite3.OperationalError):
                        raise  # cannot write here: not damage
                    # Derived state: a damaged index is thrown away and rebuilt from refs.
                    self._remove_files()
                    return self._open(self.path)
            except (sqlite3.Error, OSError) as error:
                logger.info(
                    "mlops-lite: keeping the run index in memory (%s): %s", self.path, error
                )
                self.path = ":memory:"
        return self._open(":memory:")

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # Derived data: losing the last writes on power loss only costs a rebuild.
            db.execute("PRAGMA synchronous=OFF")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _INDEX_VERSION):
                raise sqlite3.DatabaseError("index written by another mlops_lite version")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={_INDEX_VERSION}")
        except BaseException:
            db.close()
            raise
        return db

    def _remove_files(self) -> None:
        if self.path == ":memory:":
            return
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass

    def _rebuild(self) -> None:
        """Start over from the refs: the file was damaged (or could not be written)."""
        self._db.close()
        try:
            self._remove_files()
        except OSError:
            self.path = ":memory:"
        self._db = self._connect()
        try:
            self._refresh()
        except sqlite3.DatabaseError:
            if self.path == ":memory:":
                raise
            self._db.close()
            self.path = ":memory:"
            self._db = self._connect()
            self._refresh()

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read; a damaged index is rebuilt and the read done again."""
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError:
            self._rebuild()
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # refresh ---------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the index up to date with the refs that changed since last time."""
        try:
            self._refresh()
        except sqlite3.DatabaseError:
            self._rebuild()

    def _refresh(self) -> None:
        refs = self.store.refs
        if isinstance(refs, DiskRefs):
            self._refresh_from_disk(refs)
            return
        current = refs.list(RUNS_PREFIX)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            indexed = dict(self._db.execute("SELECT ref, sha FROM runs").fetchall())
            for ref in indexed.keys() - current.keys():
                self._forget(ref)
            changed = [(ref, sha) for ref, sha in current.items() if indexed.get(ref) != sha]
            for ref, sha in changed:
                self._index_run(ref, sha, self.store, known=ref in indexed)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # nothing open, or the file is damaged: the caller's error says more

    def _refresh_from_disk(self, refs: DiskRefs) -> None:
        stamps = dict(self._db.execute("SELECT path, stamp FROM stamps").fetchall())
        packed_path = refs.packed_refs_path
        current = {directory: _stamp(directory) for directory in refs.loose_dirs(RUNS_PREFIX)}
        packed_stamp = _stamp(packed_path)
        changed_dirs = [d for d, s in current.items() if stamps.get(d) != s]
        vanished_dirs = [d for d in stamps if d != packed_path and d not in current]
        packed_changed = stamps.get(packed_path) != packed_stamp
        if not changed_dirs and not vanished_dirs and not packed_changed:
            return
        # Every ref whose value may have changed.
        candidates: set[str] = set()
        new_loose: dict[str, str | None] = {}
        packed: dict[str, str] | None = None
        if packed_changed:
            candidates.update(row[0] for row in self._db.execute("SELECT ref FROM runs").fetchall())
            packed = refs.read_packed(RUNS_PREFIX)
            candidates.update(packed)
        for directory in changed_dirs + vanished_dirs:
            prefix = refs.ref_prefix_of(directory)
            # Only this directory's loose refs ("/" sorts just before "0").
            loose_stamps = dict(
                self._db.execute(
                    "SELECT ref, stamp FROM loose WHERE ref >= ? AND ref < ?",
                    (prefix, prefix[:-1] + "0"),
                ).fetchall()
            )
            seen = set()
            for ref, stat in refs.loose_files(directory):
                seen.add(ref)
                stamp = f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"
                if loose_stamps.get(ref) != stamp or packed_changed:
                    new_loose[ref] = stamp
                    candidates.add(ref)
            for ref in loose_stamps:
                if ref.count("/") == prefix.count("/") and ref not in seen:
                    new_loose[ref] = None
                    candidates.add(ref)
        # Take the write lock before reading ref values: a writer that moves a ref
        # after we read it must index its run after our commit, not under it.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # Loading every indexed sha costs ~80 ms at 100k runs: only worth it
            # when most refs are candidates anyway (packed-refs rewritten).
            if len(candidates) > 1000:
                indexed = dict(self._db.execute("SELECT ref, sha FROM runs").fetchall())
            else:
                indexed = {}
                for ref in candidates:
                    row = self._db.execute("SELECT sha FROM runs WHERE ref = ?", (ref,)).fetchone()
                    if row is not None:
                        indexed[ref] = row[0]
            changed: list[tuple[str, str]] = []
            fresh_packed = packed is None
            for ref in candidates:
                # A loose ref file wins over packed-refs, as in git.
                sha = refs.read_loose(ref)
                if sha is None:
                    if packed is None:
                        packed = refs.read_packed(RUNS_PREFIX)
                    sha = packed.get(ref)
                if sha is None and not fresh_packed:
                    # `git pack-refs` may have moved it from its loose file into a
                    # packed-refs newer than the one read above: read that once more.
                    packed = refs.read_packed(RUNS_PREFIX)
                    fresh_packed = True
                    sha = packed.get(ref)
                if sha is None:
                    self._forget(ref)
                elif indexed.get(ref) != sha:
                    changed.append((ref, sha))
            reader = _prefetch_runs(self.store, [sha for _, sha in changed])
            for ref, sha in changed:
                self._index_run(ref, sha, reader, known=ref in indexed)
            for ref, loose_stamp in new_loose.items():
                if loose_stamp is None:
                    self._db.execute("DELETE FROM loose WHERE ref = ?", (ref,))
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO loose VALUES (?, ?)", (ref, loose_stamp)
                    )
            for directory in vanished_dirs:
                self._db.execute("DELETE FROM stamps WHERE path = ?", (directory,))
            for directory, stamp in [*current.items(), (packed_path, packed_stamp)]:
                self._db.execute("INSERT OR REPLACE INTO stamps VALUES (?, ?)", (directory, stamp))
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _forget(self, ref: str) -> None:
        self._db.execute("DELETE FROM runs WHERE ref = ?", (ref,))
        self._db.execute("DELETE FROM cache WHERE ref = ?", (ref,))
        self._db.execute("DELETE FROM run_values WHERE ref = ?", (ref,))

    def _index_run(self, ref: str, sha: str, reader: _ObjectReader, *, known: bool = True) -> None:
        parsed = parse_run_ref(ref)
        if parsed is None:
            return  # not a name a run can have: never listed
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
                for name, tree_id in read_run_commit(self.store.read_object, sha).steps.items():
                    step_records[name] = read_step_record(
                        self.store.read_object, tree_id, where=f"step {name} of {ref}"
                    )
        except MlopsLiteError as error:
            # A run this version cannot read (a newer schema, missing objects,
            # a malformed record) is still listed, as "unreadable", with the reason.
            self._forget(ref)
            pipeline, run_name = parsed
            self._db.execute(
                "INSERT INTO runs (ref, sha, pipeline, run_name, status, reason) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (ref, sha, pipeline, run_name, "unreadable", str(error)[:1000]),
            )
            return
        self.add_run(
            ref, sha, run.record, step_records, run.code_commit, in_transaction=True, replace=known
        )

    def add_run(
        self,
        ref: str,
        sha: str,
        record: RunRecord,
        steps: dict[str, StepRecord],
        code_commit: str,
        *,
        in_transaction: bool = False,
        replace: bool = True,
    ) -> None:
        """Index a run the caller just wrote (or read), with its cache entries.

        ``replace=False`` promises the ref is not indexed yet (a cold rebuild),
        which spares two deletes per run. A run the caller just recorded that
        cannot be indexed (a full disk) is left for the next refresh, which
        finds it from its ref: the index is derived, the run is in git.
        """
        row = (
            ref, sha, record.pipeline_name, record.run_name, record.status,
            record.start_time, record.end_time, code_commit,
            _text(record.author.get("email")), _text(record.environment.get("host")), None,
        )  # fmt: skip
        cache_rows = [
            (step.cache_key, ref, name, encode_outputs(step.outputs), step.end_time)
            for name, step in steps.items()
            if step.cache_key and step.status in FINISHED_STEP_STATUSES
        ]
        value_rows = [
            (ref, column.name, pack_value(value), value if is_number(value) else None)
            for column, value in run_columns(
                record.parameters,
                record.metadata,
                ((name, step.metadata) for name, step in steps.items()),
            ).items()
        ]
        if in_transaction:
            self._insert_run(ref, row, cache_rows, value_rows, replace=replace)
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._insert_run(ref, row, cache_rows, value_rows, replace=replace)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.Error as error:
            logger.info(
                "mlops-lite: run %s not indexed now (%s); the next look finds it", ref, error
            )

    def _insert_run(
        self,
        ref: str,
        row: tuple[Any, ...],
        cache_rows: list[tuple[Any, ...]],
        value_rows: list[tuple[Any, ...]],
        *,
        replace: bool,
    ) -> None:
        if replace:
            self._forget(ref)
        self._db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        self._db.executemany("INSERT OR REPLACE INTO cache VALUES (?, ?, ?, ?, ?)", cache_rows)
        self._db.executemany("INSERT OR REPLACE INTO run_values VALUES (?, ?, ?, ?)", value_rows)

    # queries -----------------------------------------------------------------

    def cache_hits(self, cache_key: CacheKey) -> Iterator[CacheHit]:
        """Earlier executions with this key, oldest first (the executions, before their reuses)."""
        rows = self._query(
            "SELECT cache.ref, cache.step, cache.outputs, runs.sha FROM cache "
            "LEFT JOIN runs ON runs.ref = cache.ref "
            "WHERE cache_key = ? ORDER BY cache.end_time ASC",
            (cache_key,),
        )
        for ref, step, outputs, sha in rows:
            try:
                yield CacheHit(ref, step, decode_outputs(outputs), sha)
            except RecordError:
                continue

    def runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        code_commit: CommitId | None = None,
        author: str | None = None,
        text: str | None = None,
        offset: int = 0,
        order_by: Column | None = None,
        ascending: bool = False,
    ) -> list[RunRow]:
        """Runs newest first (or by a column's numeric value), filtered, one page at a time.

        ``text`` matches part of the run name, pipeline, author or host, or a sha
        prefix. Runs without a number in ``order_by`` come last, newest first.
        """
        where, args = _filters(pipeline, status, code_commit, author, text)
        if order_by is None:
            sql = f"SELECT runs.* FROM runs {where} ORDER BY start_time DESC, run_name DESC"
        else:
            direction = "ASC" if ascending else "DESC"
            sql = (
                "SELECT runs.* FROM runs LEFT JOIN run_values AS v "
                f"ON v.ref = runs.ref AND v.name = ? {where} "
                f"ORDER BY v.number IS NULL, v.number {direction}, start_time DESC, run_name DESC"
            )
            args.insert(0, order_by.name)
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            args += [-1 if limit is None else limit, offset]
        return [RunRow(*row) for row in self._query(sql, args)]

    def count(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        author: str | None = None,
        text: str | None = None,
    ) -> int:
        """How many runs the same filters as ``runs()`` select."""
        where, args = _filters(pipeline, status, None, author, text)
        return int(self._query(f"SELECT COUNT(*) FROM runs {where}", args)[0][0])

    def values(self, refs: list[str], columns: list[Column]) -> dict[str, dict[Column, Any]]:
        """``{ref: {column: value}}`` for the given runs and columns (absent values left out)."""
        if not refs or not columns:
            return {}
        by_name = {column.name: column for column in columns}
        found: dict[str, dict[Column, Any]] = {}
        # Bounded batches: sqlite limits the number of parameters of one statement.
        for start in range(0, len(refs), 400):
            batch = refs[start : start + 400]
            rows = self._query(
                f"SELECT ref, name, value FROM run_values WHERE ref IN ({_marks(batch)}) "
                f"AND name IN ({_marks(by_name)})",
                [*batch, *by_name],
            )
            for ref, name, value in rows:
                try:
                    found.setdefault(ref, {})[by_name[name]] = unpack_value(value)
                except RecordError:
                    continue
        return found

    def columns(self, *, pipeline: str | None = None, recent: int = 500) -> list[Column]:
        """The columns the newest ``recent`` runs (of ``pipeline``) have, sorted."""
        where, args = _filters(pipeline, None, None, None, None)
        rows = self._query(
            "SELECT DISTINCT name FROM run_values WHERE ref IN "
            f"(SELECT ref FROM runs {where} ORDER BY start_time DESC LIMIT ?)",
            [*args, recent],
        )
        return sorted(Column.parse(name) for (name,) in rows)

    def pipelines(self) -> list[str]:
        """Every pipeline with at least one run, sorted."""
        return [
            row[0] for row in self._query("SELECT DISTINCT pipeline FROM runs ORDER BY pipeline")
        ]

    def find(self, text: str) -> list[RunRow]:
        """Runs whose name, ref, sha or sha prefix is ``text``."""
        rows = self._query(
            "SELECT * FROM runs WHERE run_name = ? OR ref = ? OR sha = ?", (text, text, text)
        )
        if not rows and len(text) >= 4 and all(c in "0123456789abcdef" for c in text.lower()):
            rows = self._query(
                "SELECT * FROM runs WHERE sha >= ? AND sha < ?", (text.lower(), text.lower() + "g")
            )
        return [RunRow(*row) for row in rows]


def _marks(values: Sized) -> str:
    return ", ".join("?" * len(values))


def _filters(
    pipeline: str | None,
    status: str | None,
    code_commit: str | None,
    author: str | None,
    text: str | None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) of a runs query."""
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("pipeline", pipeline),
        ("status", status),
        ("code_commit", code_commit),
        ("author", author),
    ):
        if value is not None:
            clauses.append(f"runs.{column} = ?")
            args.append(value)
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(
            "(runs.run_name LIKE ? ESCAPE '\\' OR runs.pipeline LIKE ? ESCAPE '\\' "
            "OR runs.author LIKE ? ESCAPE '\\' OR runs.host LIKE ? ESCAPE '\\' "
            "OR (runs.sha >= ? AND runs.sha < ?))"
        )
        prefix = text.lower()
        args += [pattern] * 4 + [prefix, prefix + "g"]
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args


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


def _text(value: object) -> str | None:
    """A text column's value from a record field that should be a string (and may not be)."""
    return value if isinstance(value, str) else None
