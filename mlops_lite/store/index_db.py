"""The run index's tables, and the writes both the index and its synchronisation make.

``runs`` holds one row per listed run (keyed by its ref); ``holders`` the
archive commits read (archives of runs and roots; holder 0 is a run's own ref),
``held`` which holds which run, and ``contains`` which root holds which
archive; ``run_values`` the metric and parameter columns; ``cache`` the cache
keys of finished steps; ``stamps``, ``loose`` and ``deleted`` what the last
look at the refs saw (``index_sync.py``); ``settled`` the archive refs
folding last found nothing to do with (``folding.fold_archives``), forgotten
whenever the archives read change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Final, TypeVar

from mlops_lite.store.index_rows import RUN_COLUMNS, IndexedRun

__all__ = [
    "CACHE_INDEXES",
    "INDEX_VERSION",
    "INDIVIDUAL",
    "INSERT_RUN",
    "INSERT_RUN_WITH_ID",
    "LOOKUP_INDEXES",
    "RUN_INDEXES",
    "SCHEMA",
    "create_run_indexes",
    "forget_ids",
    "forget_settled",
    "in_batches",
    "insert_run",
    "rollback",
]

# 6: a run's ref is unique by an index built after a bulk load, not by its column.
INDEX_VERSION: Final = 6
# The holder id of runs held by their own ref (archives get ids from 1).
INDIVIDUAL: Final = 0

_TABLES: Final = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, ref TEXT NOT NULL, sha TEXT NOT NULL, pipeline TEXT NOT NULL,
    run_name TEXT NOT NULL, status TEXT NOT NULL, start_time REAL, end_time REAL,
    code_commit TEXT, author TEXT, host TEXT, reason TEXT, author_name TEXT,
    parameters BLOB, metadata BLOB,
    complete INTEGER NOT NULL DEFAULT 1  -- 0: values and cache keys still in its archive
);
CREATE TABLE IF NOT EXISTS holders (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, complete INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
    holder INTEGER NOT NULL, run INTEGER NOT NULL, PRIMARY KEY (holder, run)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS held_by_run ON held (run);
CREATE TABLE IF NOT EXISTS contains (
    root INTEGER NOT NULL, child INTEGER NOT NULL, PRIMARY KEY (root, child)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contains_by_child ON contains (child);
CREATE TABLE IF NOT EXISTS cache (
    cache_key TEXT NOT NULL, run INTEGER NOT NULL, step TEXT NOT NULL
);
-- Each run's parameters and metrics (core/columns.py), so listings show them as columns
-- without reading a record per run. ``number`` holds numeric values, for sorting.
CREATE TABLE IF NOT EXISTS run_values (
    run INTEGER NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL, number REAL,
    PRIMARY KEY (run, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stamps (path TEXT PRIMARY KEY, stamp TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS loose (ref TEXT PRIMARY KEY, stamp TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deleted (ref TEXT PRIMARY KEY, sha TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settled (state TEXT NOT NULL);
"""
# The cache table's indexes, built after loading a fresh clone's million cache keys
# (inserted one by one into an index of random keys, they took 12 s of 15).
CACHE_INDEXES: Final = {
    "cache_by_key": "INDEX IF NOT EXISTS cache_by_key ON cache (cache_key)",
    "cache_by_run": "INDEX IF NOT EXISTS cache_by_run ON cache (run)",
}
SCHEMA: Final = _TABLES + "".join(f"CREATE {statement};\n" for statement in CACHE_INDEXES.values())
# Built after a bulk load rather than during it: 100,000 rows load 4x faster
# (the unique index of refs too: kept during the load, it costs a third of it).
RUN_INDEXES: Final = {
    "runs_by_ref": "UNIQUE INDEX IF NOT EXISTS runs_by_ref ON runs (ref)",
    "runs_by_time": "INDEX IF NOT EXISTS runs_by_time ON runs (start_time DESC, run_name DESC)",
}
# Dropped for a bulk load too, and built again by the first look-up that uses one
# (``RunIndex._lookup_indexes``): a fresh clone's listing needs none of them, and at
# 100,000 runs they cost it 0.2 s.
LOOKUP_INDEXES: Final = {
    "runs_by_pipeline": "INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, start_time DESC)",
    "runs_by_sha": "INDEX IF NOT EXISTS runs_by_sha ON runs (sha)",
    "runs_by_name": "INDEX IF NOT EXISTS runs_by_name ON runs (run_name)",
}
INSERT_RUN: Final = (
    f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}, complete) "
    f"VALUES ({', '.join('?' * len(RUN_COLUMNS))}, ?)"
)
# A run an archive lists, with the id given (a bulk load numbers its rows itself):
# its values and cache keys are loaded from the archive when first needed.
INSERT_RUN_WITH_ID: Final = (
    f"INSERT INTO runs (id, {', '.join(RUN_COLUMNS)}, complete) "
    f"VALUES (?, {', '.join('?' * len(RUN_COLUMNS))}, 0)"
)


def create_run_indexes(db: sqlite3.Connection) -> None:
    """Create the indexes of the runs table (those that are missing)."""
    for statement in RUN_INDEXES.values():
        db.execute(f"CREATE {statement}")


def forget_settled(db: sqlite3.Connection) -> None:
    """The archives read changed: what folding noted about them no longer holds."""
    db.execute("DELETE FROM settled")


def rollback(db: sqlite3.Connection) -> None:
    """End an open transaction without its writes (nothing open: nothing to do)."""
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # nothing open, or the file is damaged: the caller's error says more


def insert_run(db: sqlite3.Connection, indexed: IndexedRun, holder: int) -> None:
    """Replace the run's row with ``indexed``, held by ``holder`` (in the open transaction)."""
    row = db.execute("SELECT id FROM runs WHERE ref = ?", (indexed.ref,)).fetchone()
    if row is not None:
        forget_ids(db, [row[0]])
    run = db.execute(INSERT_RUN, (*indexed.row, 1)).lastrowid
    db.execute("INSERT INTO held VALUES (?, ?)", (holder, run))
    db.executemany(
        "INSERT OR REPLACE INTO run_values VALUES (?, ?, ?, ?)",
        [(run, *value) for value in indexed.values],
    )
    db.executemany(
        "INSERT INTO cache VALUES (?, ?, ?)", [(key, run, step) for key, step in indexed.cache]
    )


T = TypeVar("T")

# SQLite before 3.32 takes at most 999 parameters in one statement: lists go in slices.
_IN_BATCH: Final = 400


def in_batches(values: Sequence[T]) -> Iterator[tuple[Sequence[T], str]]:
    """``(slice, "?, ?, ...")`` for each slice of ``values`` one ``IN (...)`` may hold."""
    for start in range(0, len(values), _IN_BATCH):
        batch = values[start : start + _IN_BATCH]
        yield batch, ", ".join("?" * len(batch))


def forget_ids(db: sqlite3.Connection, runs: list[int]) -> None:
    """Drop the rows of these run ids, with their holders, values and cache keys."""
    for batch, marks in in_batches(runs):
        for table, column in (
            ("runs", "id"), ("held", "run"), ("run_values", "run"), ("cache", "run"),
        ):  # fmt: skip
            db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", batch)
