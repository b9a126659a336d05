"""The derived local index of runs and cache keys (``.git/mlops-lite/index.sqlite3``).

The refs are the truth; this index only makes listing and cache look-ups fast.
It is keyed by what a run is called (``refs/mlops/runs/<pipeline>/<run>``),
never by a path, and it knows which *holders* hold each run: the run's own ref
(holder 0), or archives (``archives.py``). A run is listed while something
holds it and it is not deleted (``deletions.py``). ``index_sync.py`` keeps it
in step with the refs, reading only what changed; it is rebuilt from scratch
when missing, damaged or written by another version, and never pushed. A
store without a state directory (the memory store) keeps it in memory.

An archive's runs are listed as soon as the archive is seen; their metric
columns and cache keys are loaded the first time a query needs them (a fresh
clone lists 100,000 runs in about 2.5 s, in one bulk load; its first run loads
the rest, a million cache keys, in about 7 s).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mlops_lite.core.columns import Column
from mlops_lite.core.graph import inverted, reachable
from mlops_lite.core.ids import CacheKey, CommitId
from mlops_lite.core.log import LazyLogger
from mlops_lite.core.records import RunRecord, StepRecord, unpack_value
from mlops_lite.errors import RecordError
from mlops_lite.store.archives import Listing
from mlops_lite.store.index_db import (
    INDEX_VERSION,
    INDIVIDUAL,
    LOOKUP_INDEXES,
    SCHEMA,
    create_run_indexes,
    in_batches,
    insert_run,
    rollback,
)
from mlops_lite.store.index_rows import RUN_COLUMNS, from_record, to_listing
from mlops_lite.store.index_sync import IndexSync, StartOver, complete_holders
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import RUNS_PREFIX

__all__ = ["CacheHit", "RunIndex", "RunRow"]

logger = LazyLogger(__name__)

_ROW: Final = ", ".join(f"runs.{name}" for name in RUN_COLUMNS)


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
    author_name: str | None = None
    parameters: bytes | None = None  # packed (``core.records.pack_value``)
    metadata: bytes | None = None  # the metadata recorded with the run, packed

    def unpacked(self, field: str) -> dict[Any, Any] | None:
        """``parameters`` or ``metadata`` decoded; None when the index does not hold it."""
        data = getattr(self, field)
        if data is None:
            return None
        try:
            value = unpack_value(data, where=f"the index row of {self.ref}")
        except RecordError:
            return None
        return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class CacheHit:
    """An earlier execution of a step with the same cache key, and the run commit holding it.

    Its outputs are read from that run's own record when the hit is used: the
    index only says where to look.
    """

    ref: str
    step: str
    sha: str

    @property
    def pipeline(self) -> str:
        """The pipeline of the run that holds the hit."""
        return self.ref.removeprefix(RUNS_PREFIX).rsplit("/", 1)[0]

    @property
    def run_name(self) -> str:
        """The run that holds the hit."""
        return self.ref.rsplit("/", 1)[1]


class RunIndex:
    """sqlite index of runs and cache keys, kept in step with the refs.

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
            if version not in (0, INDEX_VERSION):
                raise sqlite3.DatabaseError("index written by another mlops_lite version")
            db.executescript(SCHEMA)
            create_run_indexes(db)
            db.execute(f"PRAGMA user_version={INDEX_VERSION}")
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
            self._sync()
        except sqlite3.DatabaseError:
            if self.path == ":memory:":
                raise
            self._db.close()
            self.path = ":memory:"
            self._db = self._connect()
            self._sync()

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read; a damaged index is rebuilt and the read done again."""
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError:
            self._rebuild()
            return self._db.execute(sql, args).fetchall()

    def _where(
        self,
        pipeline: str | None,
        status: str | None,
        code_commit: str | None,
        author: str | None,
        text: str | None,
    ) -> tuple[str, list[Any]]:
        """The WHERE clause (and its arguments) of a runs query.

        Filtering on a pipeline builds its look-up index first (``_lookup_indexes``).
        """
        if pipeline is not None:
            self._lookup_indexes("runs_by_pipeline")
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

    def _lookup_indexes(self, *names: str) -> None:
        """Build the look-up indexes a query uses, if a bulk load left them for now.

        Existing, each costs a few microseconds; busy or read-only, the query scans.
        """
        for name in names:
            try:
                self._db.execute(f"CREATE {LOOKUP_INDEXES[name]}")
            except sqlite3.OperationalError:
                return

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # refresh ---------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the index up to date with the refs that changed since last time."""
        try:
            self._sync()
        except sqlite3.DatabaseError:
            self._rebuild()

    def _sync(self) -> None:
        try:
            IndexSync(self._db, self.store).run()
        except StartOver:
            # A run came back (a deletion was undone): every holder is read again.
            self._db.close()
            self._remove_files()
            self._db = self._connect()
            IndexSync(self._db, self.store).run()

    def add_run(
        self,
        ref: str,
        sha: str,
        record: RunRecord,
        steps: dict[str, StepRecord],
        code_commit: str,
    ) -> None:
        """Index a run the caller just recorded under its own ref, with its cache entries.

        A run that cannot be indexed now (a full disk) is left for the next
        refresh, which finds it from its ref: the index is derived, the run is in git.
        """
        indexed = from_record(ref, sha, record, steps, code_commit)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                insert_run(self._db, indexed, INDIVIDUAL)
                self._db.execute("COMMIT")
            except BaseException:
                rollback(self._db)
                raise
        except sqlite3.Error as error:
            logger.info(
                "mlops-lite: run %s not indexed now (%s); the next look finds it", ref, error
            )

    # archives' rows, loaded on demand ----------------------------------------------

    def _complete(self) -> None:
        """Load the metric columns and cache keys of archived runs listed without them."""
        pending = self._query("SELECT id, name FROM holders WHERE complete = 0")
        if not pending:
            return
        try:
            complete_holders(self._db, self.store, pending)
        except sqlite3.DatabaseError:
            self._rebuild()
            pending = self._query("SELECT id, name FROM holders WHERE complete = 0")
            complete_holders(self._db, self.store, pending)

    # queries -----------------------------------------------------------------

    def cache_hits(self, cache_key: CacheKey) -> Iterator[CacheHit]:
        """Earlier executions with this key, oldest first (the executions, before their reuses)."""
        self._complete()
        rows = self._query(
            "SELECT runs.ref, cache.step, runs.sha FROM cache JOIN runs ON runs.id = cache.run "
            "WHERE cache.cache_key = ? ORDER BY runs.start_time ASC, runs.run_name ASC",
            (cache_key,),
        )
        for ref, step, sha in rows:
            yield CacheHit(ref, step, sha)

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
        where, args = self._where(pipeline, status, code_commit, author, text)
        if order_by is None:
            sql = f"SELECT {_ROW} FROM runs {where} ORDER BY start_time DESC, run_name DESC"
        else:
            self._complete()
            direction = "ASC" if ascending else "DESC"
            sql = (
                f"SELECT {_ROW} FROM runs LEFT JOIN run_values AS v "
                f"ON v.run = runs.id AND v.name = ? {where} "
                f"ORDER BY v.number IS NULL, v.number {direction}, start_time DESC, run_name DESC"
            )
            args.insert(0, order_by.name)
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            args += [-1 if limit is None else limit, offset]
        return [RunRow(*row) for row in self._query(sql, args)]

    def iter_runs(self, *, page: int = 1000, **filters: Any) -> Iterator[RunRow]:
        """Every run ``runs(**filters)`` selects, newest first, read a page at a time."""
        offset = 0
        while True:
            rows = self.runs(limit=page, offset=offset, **filters)
            yield from rows
            if len(rows) < page:
                return
            offset += page

    def count(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        author: str | None = None,
        text: str | None = None,
    ) -> int:
        """How many runs the same filters as ``runs()`` select."""
        where, args = self._where(pipeline, status, None, author, text)
        return int(self._query(f"SELECT COUNT(*) FROM runs {where}", args)[0][0])

    def values(self, refs: list[str], columns: list[Column]) -> dict[str, dict[Column, Any]]:
        """``{ref: {column: value}}`` for the given runs and columns (absent values left out)."""
        if not refs or not columns:
            return {}
        self._complete()
        by_name = {column.name: column for column in columns}
        found: dict[str, dict[Column, Any]] = {}
        names = ", ".join("?" * len(by_name))
        for batch, marks in in_batches(refs):
            rows = self._query(
                "SELECT runs.ref, v.name, v.value FROM run_values AS v "
                "JOIN runs ON runs.id = v.run "
                f"WHERE runs.ref IN ({marks}) AND v.name IN ({names})",
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
        self._complete()
        where, args = self._where(pipeline, None, None, None, None)
        rows = self._query(
            "SELECT DISTINCT name FROM run_values WHERE run IN "
            f"(SELECT id FROM runs {where} ORDER BY start_time DESC LIMIT ?)",
            [*args, recent],
        )
        return sorted(Column.parse(name) for (name,) in rows)

    def pipelines(self) -> list[str]:
        """Every pipeline with at least one run, sorted."""
        self._lookup_indexes("runs_by_pipeline")
        return [
            row[0] for row in self._query("SELECT DISTINCT pipeline FROM runs ORDER BY pipeline")
        ]

    def find(self, text: str) -> list[RunRow]:
        """Runs whose name, ref, sha or sha prefix is ``text``."""
        self._lookup_indexes("runs_by_name", "runs_by_sha")
        rows = self._query(
            f"SELECT {_ROW} FROM runs WHERE run_name = ? OR ref = ? OR sha = ?", (text, text, text)
        )
        if not rows and len(text) >= 4 and all(c in "0123456789abcdef" for c in text.lower()):
            rows = self._query(
                f"SELECT {_ROW} FROM runs WHERE sha >= ? AND sha < ?",
                (text.lower(), text.lower() + "g"),
            )
        return [RunRow(*row) for row in rows]

    # what folding and deleting need ---------------------------------------------

    def individual_runs(self) -> list[tuple[str, str, str]]:
        """``(ref, sha, status)`` of the runs held by a ref of their own, oldest first."""
        return self._query(
            "SELECT runs.ref, runs.sha, runs.status FROM held JOIN runs ON runs.id = held.run "
            f"WHERE held.holder = {INDIVIDUAL} ORDER BY runs.start_time, runs.run_name"
        )

    def individual_count(self) -> int:
        """How many runs are held by a ref of their own (what folding keeps bounded)."""
        return int(self._query(f"SELECT COUNT(*) FROM held WHERE holder = {INDIVIDUAL}")[0][0])

    def sharing_cache_keys(self, refs: list[str]) -> dict[str, str]:
        """``{run ref: sha}`` of other runs with a step of the same cache key as one of ``refs``.

        Those are the runs that may have reused (or been reused by) ``refs``' outputs.
        """
        self._complete()
        chosen = set(refs)
        found: dict[str, str] = {}
        for batch, marks in in_batches(refs):
            rows = self._query(
                "SELECT DISTINCT other.ref, other.sha FROM runs AS mine "
                "JOIN cache AS ours ON ours.run = mine.id "
                "JOIN cache AS theirs ON theirs.cache_key = ours.cache_key "
                "JOIN runs AS other ON other.id = theirs.run "
                f"WHERE mine.ref IN ({marks})",
                batch,
            )
            found.update((ref, sha) for ref, sha in rows if ref not in chosen)
        return found

    def holders_of(self, refs: list[str]) -> dict[str, tuple[str, set[str]]]:
        """``{run ref: (sha, archives holding it)}`` of the listed runs among ``refs``.

        The archives are named by their commit, and include the roots above the
        archive listing the run; a run held only by its own ref has an empty set.
        """
        found: dict[str, tuple[str, set[str]]] = {}
        for batch, marks in in_batches(refs):
            rows = self._query(
                "SELECT runs.ref, runs.sha, holders.name FROM runs "
                "LEFT JOIN held ON held.run = runs.id "
                "LEFT JOIN holders ON holders.id = held.holder "
                f"WHERE runs.ref IN ({marks})",
                batch,
            )
            for ref, sha, name in rows:
                archives = found.setdefault(ref, (sha, set()))[1]
                if name:
                    archives.add(name)
        # Recent runs are held by their own refs only: no root to look up for them.
        if any(archives for _, archives in found.values()):
            above = self._roots_above()
            for _, archives in found.values():
                for name in list(archives):
                    archives.update(above.get(name, ()))
        return found

    def known_archives(self) -> set[str]:
        """The archive commits (archives of runs and roots) the archive refs reach, as read."""
        return {name for (name,) in self._query("SELECT name FROM holders")}

    def settled_archives(self) -> str | None:
        """What ``note_settled_archives`` noted last, unless the archives read changed since."""
        rows = self._query("SELECT state FROM settled")
        return str(rows[0][0]) if rows else None

    def note_settled_archives(self, state: str) -> None:
        """Remember ``state`` (folding's view of the archive refs) until the archives change."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM settled")
                self._db.execute("INSERT INTO settled VALUES (?)", (state,))
                self._db.execute("COMMIT")
            except BaseException:
                rollback(self._db)
                raise
        except sqlite3.Error:
            pass  # a shortcut only: the next fold looks again

    def archive_children(self) -> dict[str, list[str]]:
        """``{root: the archive commits it holds}`` of every root the archive refs reach."""
        children: dict[str, list[str]] = {}
        for root, child in self._query(
            "SELECT parent.name, child.name FROM contains "
            "JOIN holders AS parent ON parent.id = contains.root "
            "JOIN holders AS child ON child.id = contains.child"
        ):
            children.setdefault(root, []).append(child)
        return children

    def _roots_above(self) -> dict[str, set[str]]:
        """``{archive commit: every root above it}``, from the roots the index has read."""
        parents = inverted(self.archive_children())
        return {name: reachable([name], parents) - {name} for name in parents}

    def listing(self, refs: list[str]) -> Listing:
        """What an archive of these runs lists: their rows, metric columns and cache keys."""
        self._complete()
        rows: list[tuple[Any, ...]] = []
        ids: dict[int, int] = {}
        for batch, marks in in_batches(refs):
            for row in self._query(
                f"SELECT runs.id, {_ROW} FROM runs WHERE runs.ref IN ({marks})", batch
            ):
                ids[row[0]] = len(rows)
                rows.append(row[1:])
        values: list[tuple[int, str, bytes, float | None]] = []
        cache: list[tuple[int, str, str]] = []
        id_list = list(ids)
        for id_batch, marks in in_batches(id_list):
            for run, name, value, number in self._query(
                f"SELECT run, name, value, number FROM run_values WHERE run IN ({marks})",
                id_batch,
            ):
                values.append((ids[run], name, value, number))
            for run, key, step in self._query(
                f"SELECT run, cache_key, step FROM cache WHERE run IN ({marks})", id_batch
            ):
                cache.append((ids[run], key, step))
        return to_listing(rows, values, cache)
