"""The derived local index of runs and cache entries (``.git/mlops-lite/index.sqlite3``).

The refs are the truth; this index only makes listing and cache look-ups fast.
It is refreshed from the refs that changed since it last looked — per pipeline
directory of loose refs (by mtime, then per ref file) and the packed-refs file —
so a refresh after one new run reads one ref, not all of them. It is rebuilt
from scratch when missing or damaged, and never pushed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack

from mlops_lite.errors import MlopsLiteError
from mlops_lite.records import RunRecord, StepRecord
from mlops_lite.store.interface import ObjectRefStore
from mlops_lite.store.objects import parse_commit, parse_tree
from mlops_lite.store.repository import RUNS_PREFIX, GitStore

_INDEX_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    ref TEXT PRIMARY KEY, sha TEXT NOT NULL, pipeline TEXT NOT NULL, run_name TEXT NOT NULL,
    status TEXT NOT NULL, start_time REAL, end_time REAL, code_commit TEXT, author TEXT,
    host TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (start_time DESC);
CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, start_time DESC);
CREATE INDEX IF NOT EXISTS runs_by_sha ON runs (sha);
CREATE INDEX IF NOT EXISTS runs_by_code ON runs (code_commit);
CREATE TABLE IF NOT EXISTS cache (
    cache_key TEXT NOT NULL, ref TEXT NOT NULL, step TEXT NOT NULL, outputs BLOB NOT NULL,
    end_time REAL, PRIMARY KEY (cache_key, ref, step)
);
CREATE INDEX IF NOT EXISTS cache_by_ref ON cache (ref);
CREATE TABLE IF NOT EXISTS stamps (path TEXT PRIMARY KEY, stamp TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS loose (ref TEXT PRIMARY KEY, stamp TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class RunRow:
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


@dataclass(frozen=True, slots=True)
class CacheHit:
    ref: str
    step: str
    outputs: dict[str, dict[str, Any]]  # output name -> OutputRecord fields
    author: str | None  # email of whoever recorded the run

    @property
    def pipeline(self) -> str:
        return self.ref.removeprefix(RUNS_PREFIX).rsplit("/", 1)[0]

    @property
    def run_name(self) -> str:
        return self.ref.rsplit("/", 1)[1]


class _ObjectReader(Protocol):
    def read_object(self, object_id: str) -> bytes: ...


class _Prefetched:
    """Objects read in bulk beforehand, with the store behind them for the rest."""

    def __init__(self, store: GitStore, objects: dict[str, bytes]) -> None:
        self._store = store
        self._objects = objects

    def read_object(self, object_id: str) -> bytes:
        found = self._objects.get(object_id)
        return found if found is not None else self._store.read_object(object_id)


def _prefetch_runs(store: GitStore, shas: list[str]) -> _ObjectReader:
    """Read many run commits, their trees and records in three bulk passes."""
    if len(shas) < 100:
        return store
    objects = store.read_objects(shas)
    trees = {sha: parse_commit(objects[sha])["tree"][0].decode() for sha in shas if sha in objects}
    objects.update(store.read_objects(sorted(set(trees.values()))))
    records = []
    for tree_id in set(trees.values()):
        entry = parse_tree(objects[tree_id]).get("run.msgpack") if tree_id in objects else None
        if entry is not None:
            records.append(entry[1])
    objects.update(store.read_objects(records))
    return _Prefetched(store, objects)


def _read_run(store: _ObjectReader, sha: str) -> tuple[RunRecord, dict[str, tuple[int, str]], str]:
    """The run record, the run tree's entries and the code commit of a run commit."""
    headers = parse_commit(store.read_object(sha))
    tree_entries = parse_tree(store.read_object(headers["tree"][0].decode()))
    record = RunRecord.decode(store.read_object(tree_entries["run.msgpack"][1]), where=f"run {sha}")
    code_commit = headers["parent"][0].decode() if headers.get("parent") else ""
    return record, tree_entries, code_commit


def _steps_tree(store: _ObjectReader, tree_entries: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    return parse_tree(store.read_object(tree_entries["steps"][1])) if "steps" in tree_entries else {}


def read_run_commit(store: ObjectRefStore, sha: str) -> tuple[RunRecord, dict[str, tuple[int, str]], str]:
    """The run record, the ``steps`` tree entries and the code commit of a run commit."""
    record, tree_entries, code_commit = _read_run(store, sha)
    return record, _steps_tree(store, tree_entries), code_commit


class RunIndex:
    """sqlite index of run refs and cache keys, kept in step with the refs."""

    def __init__(self, store: GitStore) -> None:
        self.store = store
        self.path = os.path.join(store.state_dir, "index.sqlite3")
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        os.makedirs(self.store.state_dir, exist_ok=True)
        for attempt in range(2):
            try:
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                # Derived data: losing the last writes on power loss only costs a rebuild.
                db.execute("PRAGMA synchronous=OFF")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, _INDEX_VERSION):
                    raise sqlite3.DatabaseError("index written by another mlops_lite version")
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA user_version={_INDEX_VERSION}")
                return db
            except sqlite3.DatabaseError:
                if attempt:
                    raise
                # Derived state: a damaged index is thrown away and rebuilt from refs.
                self._remove_files()
        raise AssertionError("unreachable")

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass

    def close(self) -> None:
        self._db.close()

    # refresh ---------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the index up to date with the refs that changed since last time."""
        try:
            self._refresh()
        except sqlite3.DatabaseError:
            self._db.close()
            self._remove_files()
            self._db = self._connect()
            self._refresh()

    def _refresh(self) -> None:
        stamps = dict(self._db.execute("SELECT path, stamp FROM stamps").fetchall())
        runs_dir = os.path.join(self.store.common_dir, *RUNS_PREFIX.rstrip("/").split("/"))
        packed_path = os.path.join(self.store.common_dir, "packed-refs")
        current: dict[str, str] = {}
        changed_dirs: list[str] = []
        for directory in _walk_dirs(runs_dir):
            current[directory] = _stamp(directory)
        packed_stamp = _stamp(packed_path)
        changed_dirs = [d for d, s in current.items() if stamps.get(d) != s]
        vanished_dirs = [d for d in stamps if d != packed_path and d not in current]
        packed_changed = stamps.get(packed_path) != packed_stamp
        if not changed_dirs and not vanished_dirs and not packed_changed:
            return
        # Every ref whose value may have changed, with its current value (or None).
        candidates: dict[str, str | None] = {}
        new_loose: dict[str, str | None] = {}
        if packed_changed:
            for ref in self._db.execute("SELECT ref FROM runs").fetchall():
                candidates[ref[0]] = None
            candidates.update(dict.fromkeys(_read_packed_runs(packed_path)))
        for directory in changed_dirs + vanished_dirs:
            prefix = "refs/" + os.path.relpath(directory, os.path.join(self.store.common_dir, "refs"))
            prefix = prefix.replace(os.sep, "/") + "/"
            # Only this directory's loose refs ("/" sorts just before "0").
            loose_stamps = dict(
                self._db.execute(
                    "SELECT ref, stamp FROM loose WHERE ref >= ? AND ref < ?", (prefix, prefix[:-1] + "0")
                ).fetchall()
            )
            seen = set()
            for entry in _scandir_files(directory):
                ref = prefix + entry.name
                seen.add(ref)
                stat = entry.stat()
                stamp = f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"
                if loose_stamps.get(ref) != stamp or packed_changed:
                    new_loose[ref] = stamp
                    candidates.setdefault(ref, None)
            for ref in loose_stamps:
                if ref.startswith(prefix) and ref.count("/") == prefix.count("/") and ref not in seen:
                    new_loose[ref] = None
                    candidates.setdefault(ref, None)
        packed: dict[str, str | None] | None = None
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
            for ref in candidates:
                # A loose ref file wins over packed-refs, as in git.
                sha = _read_loose_ref(self.store.common_dir, ref)
                if sha is None:
                    if packed is None:
                        packed = _read_packed_runs(packed_path)
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
                    self._db.execute("INSERT OR REPLACE INTO loose VALUES (?, ?)", (ref, loose_stamp))
            for directory in vanished_dirs:
                self._db.execute("DELETE FROM stamps WHERE path = ?", (directory,))
            for directory, stamp in [*current.items(), (packed_path, packed_stamp)]:
                self._db.execute("INSERT OR REPLACE INTO stamps VALUES (?, ?)", (directory, stamp))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _forget(self, ref: str) -> None:
        self._db.execute("DELETE FROM runs WHERE ref = ?", (ref,))
        self._db.execute("DELETE FROM cache WHERE ref = ?", (ref,))

    def _index_run(self, ref: str, sha: str, reader: _ObjectReader, *, known: bool = True) -> None:
        try:
            record, tree_entries, code_commit = _read_run(reader, sha)
        except MlopsLiteError:
            # A run this version cannot read (a newer schema, missing objects) is
            # still listed, as "unreadable"; reading its record raises the reason.
            self._forget(ref)
            pipeline, _, run_name = ref.removeprefix(RUNS_PREFIX).rpartition("/")
            self._db.execute(
                "INSERT INTO runs (ref, sha, pipeline, run_name, status) VALUES (?, ?, ?, ?, ?)",
                (ref, sha, pipeline, run_name, "unreadable"),
            )
            return
        step_records = {}
        if record.step_summary:
            for name, summary in record.step_summary.items():
                step_records[name] = StepRecord(name=name, function="", **summary)
        else:  # a crashed run's record, written before its steps finished
            for name, (_, tree_id) in _steps_tree(self.store, tree_entries).items():
                entries = parse_tree(self.store.read_object(tree_id))
                step_records[name] = StepRecord.decode(self.store.read_object(entries["step.msgpack"][1]))
        self.add_run(ref, sha, record, step_records, code_commit, in_transaction=True, replace=known)

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
        which spares two deletes per run.
        """
        if not in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
        try:
            if replace:
                self._forget(ref)
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ref, sha, record.pipeline_name, record.run_name, record.status,
                    record.start_time, record.end_time, code_commit,
                    record.author.get("email"), record.environment.get("host"),
                ),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO cache VALUES (?, ?, ?, ?, ?)",
                [
                    (step.cache_key, ref, name, msgpack.packb(step.outputs), step.end_time)
                    for name, step in steps.items()
                    if step.cache_key and step.status in ("completed", "cached") and step.outputs is not None
                ],
            )
            if not in_transaction:
                self._db.execute("COMMIT")
        except BaseException:
            if not in_transaction:
                self._db.execute("ROLLBACK")
            raise

    # queries -----------------------------------------------------------------

    def cache_hits(self, cache_key: str) -> Iterator[CacheHit]:
        """Earlier executions with this key, the executed (non-cached) ones first."""
        rows = self._db.execute(
            "SELECT cache.ref, cache.step, cache.outputs, runs.author FROM cache "
            "LEFT JOIN runs ON runs.ref = cache.ref WHERE cache_key = ? ORDER BY cache.end_time ASC",
            (cache_key,),
        ).fetchall()
        for ref, step, outputs, author in rows:
            yield CacheHit(ref, step, msgpack.unpackb(outputs, raw=False), author)

    def runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        code_commit: str | None = None,
    ) -> list[RunRow]:
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (("pipeline", pipeline), ("status", status), ("code_commit", code_commit)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM runs {where} ORDER BY start_time DESC, run_name DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [RunRow(*row) for row in self._db.execute(sql, args).fetchall()]

    def pipelines(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT pipeline FROM runs ORDER BY pipeline")]

    def find(self, text: str) -> list[RunRow]:
        """Runs whose name, sha or sha prefix is ``text``."""
        rows = self._db.execute(
            "SELECT * FROM runs WHERE run_name = ? OR ref = ? OR sha = ?", (text, text, text)
        ).fetchall()
        if not rows and len(text) >= 4 and all(c in "0123456789abcdef" for c in text.lower()):
            rows = self._db.execute(
                "SELECT * FROM runs WHERE sha >= ? AND sha < ?", (text.lower(), text.lower() + "g")
            ).fetchall()
        return [RunRow(*row) for row in rows]


# A directory's mtime ticks coarsely (a few ms on ext4): a change in the same
# tick as our look leaves it unchanged. As git does for its index, a stamp this
# recent is not trusted: it is stored as one that never matches, so the next
# refresh looks at that directory again.
_RACY_NS = 2_000_000_000


def _stamp(path: str) -> str:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return "missing"
    if time.time_ns() - stat.st_mtime_ns < _RACY_NS:
        return f"racy:{time.time_ns()}"
    return f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"


def _walk_dirs(top: str) -> Iterator[str]:
    if not os.path.isdir(top):
        return
    yield top
    for entry in os.scandir(top):
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_dirs(entry.path)


def _scandir_files(directory: str) -> Iterator[os.DirEntry[str]]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_file(follow_symlinks=False) and not entry.name.endswith(".lock"):
            yield entry


def _read_loose_ref(common_dir: str, ref: str) -> str | None:
    try:
        with open(os.path.join(common_dir, *ref.split("/")), "rb") as f:
            value = f.read().strip()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return value.decode() if len(value) == 40 else None


def _read_packed_runs(path: str) -> dict[str, str | None]:
    """``{run ref: sha}`` from packed-refs, read in one pass."""
    refs: dict[str, str | None] = {}
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith((b"#", b"^")):
                    continue
                sha, _, name = line.strip().partition(b" ")
                if name.startswith(RUNS_PREFIX.encode()):
                    refs[name.decode()] = sha.decode()
    except FileNotFoundError:
        pass
    return refs
