"""Archives, listings and ledgers on the memory store: what a fresh index reads, what is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Generator
from typing import Any

import msgpack
import pytest

from mlops_lite.core.records import RunRecord, StepRecord
from mlops_lite.errors import RecordError
from mlops_lite.store import MemoryStore, archives, index_sync
from mlops_lite.store.archives import (
    Listing,
    archive_ref,
    build_archive,
    read_archive,
    sorted_listing,
)
from mlops_lite.store.folding import fold_archives, fold_old_runs
from mlops_lite.store.index import RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import RUNS_PREFIX, build_run_commit, build_step_tree, run_ref
from mlops_lite.store.objects import GitObject
from mlops_lite.store.removal import remove_runs


def test_a_fresh_index_lists_archived_runs_from_the_archive_not_their_records() -> None:
    store = CountingStore()
    made = record_memory_runs(store, 300)
    index = RunIndex(store)
    assert fold_old_runs(store, index, keep=0, batch=150) == 300
    index.close()
    store.reads = 0
    index = RunIndex(store)  # a fresh clone's: built from nothing
    index.refresh()
    assert {row.ref: row.sha for row in index.runs()} == made
    # Two archives: commit, tree and listing each (none when this process read them
    # already); not one record per run.
    assert store.reads <= 6
    assert store.single == 0  # each in a bulk read of its kind
    # Their metric columns and cache keys load on first need, from the same listings.
    hits = index.cache_hits("key-7")  # type: ignore[arg-type]
    assert [hit.ref for hit in hits] == [f"{RUNS_PREFIX}p/run-00007"]
    assert store.reads <= 12
    index.close()


def test_a_fresh_index_decodes_each_listing_as_it_is_streamed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # git reads the next listings while this process decodes one: the first
    # archive under a root is decoded before the next is read, not after all.
    store = StreamingStore()
    made = record_memory_runs(store, 90)
    index = RunIndex(store)
    assert fold_old_runs(store, index, keep=0, batch=10) == 90
    assert fold_archives(store, index, fanout=8) == 1  # a root of 8 archives, and one archive
    index.close()
    decode = Listing.decode

    def logged(data: bytes, *, where: str) -> Listing:
        store.log.append("decoded")
        return decode(data, where=where)

    monkeypatch.setattr(Listing, "decode", logged)
    archives._RECENT.clear()
    store.log.clear()
    fresh = RunIndex(store)
    fresh.refresh()
    assert {row.ref: row.sha for row in fresh.runs()} == made
    assert store.log.count("decoded") == 9 and store.log.count("streamed") == 10
    # At most the root's listing and its first archive's in a row.
    assert "streamed" * 3 not in "".join(store.log)
    fresh.close()


class StreamingStore(MemoryStore):
    """A memory store that logs each object it streams."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    def stream_objects(self, object_ids: list[str]) -> Generator[GitObject, None, None]:
        for found in super().stream_objects(object_ids):
            self.log.append("streamed")
            yield found


class CountingStore(MemoryStore):
    """A memory store that counts the objects read from it (``single``: one at a time)."""

    reads = 0
    single = 0

    def read_object(self, object_id: str, kind: int | None = None) -> bytes:
        self.reads += 1
        self.single += 1
        return super().read_object(object_id, kind)

    def read_objects(self, object_ids: list[str]) -> dict[str, GitObject]:
        self.reads += len(object_ids)
        return super().read_objects(object_ids)


def record_memory_runs(store: Store, count: int, *, first: int = 0) -> dict[str, str]:
    made = {}
    code = store.pin_code().commit
    for number in range(first, first + count):
        step = StepRecord(
            name="make", function="m.make", status="completed", cache_key=f"key-{number}",
            metadata={"accuracy": number / 1000},
        )  # fmt: skip
        step_tree, step_objects = build_step_tree(step, "", {})
        record = RunRecord(
            run_name=f"run-{number:05d}", pipeline_name="p", status="completed",
            start_time=1_700_000_000.0 + number, parameters={"n": number},
            step_names=["make"], step_summary={"make": step.summary()},
        )  # fmt: skip
        commit, objects = build_run_commit(store.identity, record, {"make": step_tree.id}, code)
        store.write_objects([*step_objects, *objects])
        ref = run_ref("p", record.run_name)
        store.refs.compare_and_swap(ref, None, commit.id)
        made[ref] = commit.id
    return made


def test_folded_runs_list_what_their_records_said() -> None:
    store = MemoryStore()
    record_memory_runs(store, 40)
    index = RunIndex(store)
    index.refresh()
    before = index.runs()
    columns = index.columns()
    values = index.values([row.ref for row in before], columns)
    assert fold_old_runs(store, index, keep=10, batch=10) == 30
    fresh = RunIndex(store)
    fresh.refresh()
    assert fresh.runs() == before
    assert fresh.columns() == columns
    assert fresh.values([row.ref for row in before], columns) == values
    assert len(store.refs.list(RUNS_PREFIX)) == 10
    index.close()
    fresh.close()


def test_only_whole_batches_are_folded_and_running_runs_never() -> None:
    store = MemoryStore()
    made = record_memory_runs(store, 25)
    index = RunIndex(store)
    assert fold_old_runs(store, index, keep=10, batch=10) == 10  # 15 in excess: one batch
    assert fold_old_runs(store, index, keep=10, batch=10) == 0
    assert fold_old_runs(store, index, keep=10, batch=10, everything=True) == 5
    assert set(store.refs.list(RUNS_PREFIX)) == set(sorted(made)[-10:])
    index.close()


def test_deleting_an_archived_run_rewrites_its_archive_without_it() -> None:
    store = MemoryStore()
    made = record_memory_runs(store, 20)
    index = RunIndex(store)
    fold_old_runs(store, index, keep=0, batch=20)
    [old] = store.refs.list("refs/mlops/archive/").values()
    victim = sorted(made)[3]
    remove_runs(store, index, {victim: made[victim]}, for_the_team=True)
    [new] = store.refs.list("refs/mlops/archive/").values()
    assert new != old
    archive = read_archive(store.read_object, new)
    assert victim not in archive.listing.refs and len(archive.listing) == 19
    assert {row.ref for row in index.runs()} == set(made) - {victim}
    fresh = RunIndex(store)
    fresh.refresh()
    assert {row.ref for row in fresh.runs()} == set(made) - {victim}
    index.close()
    fresh.close()


def test_an_archive_whose_cache_keys_cannot_be_read_lists_its_runs_without_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    made = record_memory_runs(store, 30)
    index = RunIndex(store)
    assert fold_old_runs(store, index, keep=10, batch=20) == 20
    archived = sorted(made)[:20]
    hits_before = [hit.ref for hit in index.cache_hits("key-3")]  # type: ignore[arg-type]
    # The same runs, listed by a teammate's archive whose cache keys are too long.
    listing = sorted_listing(index.listing(archived))
    index.close()
    listing.cache_keys = ["k" * 1025 for _ in listing.cache_keys]
    archive, objects = build_archive(listing)
    store.write_objects(objects)
    store.refs.update_many(
        [(ref, sha, None) for ref, sha in store.refs.list("refs/mlops/archive/").items()]
        + [(archive_ref(archive.id), None, archive.id)]
    )
    fresh = RunIndex(store)
    fresh.refresh()
    assert {row.ref for row in fresh.runs()} == set(made)  # listed from the run columns
    with caplog.at_level("WARNING"):
        assert list(fresh.cache_hits("key-3")) == []  # type: ignore[arg-type]
    assert f"archive {archive.id}" in caplog.text and "listed without them" in caplog.text
    assert hits_before == [f"{RUNS_PREFIX}p/run-00003"]
    caplog.clear()
    assert list(fresh.cache_hits("key-4")) == []  # type: ignore[arg-type]
    assert caplog.text == ""  # read once: the holder is complete, as far as it can be
    fresh.close()


@pytest.mark.parametrize("bulk", [1, 100_000])
def test_archived_runs_cache_keys_and_columns_load_alike_in_bulk_or_not(
    monkeypatch: pytest.MonkeyPatch, bulk: int
) -> None:
    # A fresh clone's first cache look-up loads every archive's cache keys: in bulk
    # (the cache's indexes dropped, then built once) or not, the same rows, indexed.
    monkeypatch.setattr(index_sync, "_BULK", bulk)
    store = MemoryStore()
    made = record_memory_runs(store, 60)
    index = RunIndex(store)
    columns = index.columns()
    before = index.values(sorted(made), columns)
    assert fold_old_runs(store, index, keep=0, batch=20) == 60
    index.close()
    fresh = RunIndex(store)
    fresh.refresh()
    hits = [(hit.ref, hit.step) for hit in fresh.cache_hits("key-42")]  # type: ignore[arg-type]
    assert hits == [(f"{RUNS_PREFIX}p/run-00042", "make")]
    assert fresh.values(sorted(made), columns) == before
    indexes = {row[1] for row in fresh._db.execute("PRAGMA index_list(cache)")}
    assert indexes == {"cache_by_key", "cache_by_run"}
    plan = fresh._db.execute(
        "EXPLAIN QUERY PLAN SELECT run FROM cache WHERE cache_key = 'key-42'"
    ).fetchall()
    assert "cache_by_key" in str(plan)
    fresh.close()


def _listing(count: int = 2) -> Listing:
    store = MemoryStore()
    made = record_memory_runs(store, count)
    index = RunIndex(store)
    index.refresh()
    listing = sorted_listing(index.listing(sorted(made)))
    index.close()
    return listing


def test_a_listing_reads_back_as_written() -> None:
    listing = _listing(3)
    assert Listing.decode(listing.encode(), where="test") == listing
    archive, objects = build_archive(listing)
    again, _ = build_archive(Listing.decode(listing.encode(), where="test"))
    assert archive.id == again.id  # the same runs, the same archive


def _tampered(change: dict[str, Any]) -> bytes:
    envelope = msgpack.unpackb(_listing().encode(), raw=False)
    envelope["data"].update(change)
    return msgpack.packb(envelope, use_bin_type=True)


@pytest.mark.parametrize(
    "change",
    [
        {"refs": ["refs/mlops/runs/../../heads/main", "refs/mlops/runs/p/x"]},
        {"refs": ["refs/mlops/runs/p/a", "refs/mlops/runs/p/a"]},
        {"shas": ["not a sha", "0" * 40]},
        {"shas": ["A" * 40, "0" * 40]},
        {"shas": ["g" * 40, "0" * 40]},
        {"shas": ["\u00e9" * 40, "0" * 40]},
        {"statuses": ["completed", "hacked"]},
        {"start_times": ["yesterday", 1.0]},
        {"parameters": [b"x", 42]},
        {"cache_runs": [0, 7], "cache_keys": ["a", "b"], "cache_steps": ["s", "s"]},
        {"value_runs": [0], "value_names": [], "value_data": [], "value_numbers": []},
        {"hosts": ["h"]},
        {"refs": "refs/mlops/runs/p/a"},
        {"start_times": [True, 1.0]},
        {"statuses": ["completed", None]},
        {"hosts": ["h", "h" * 1025]},
        {"cache_runs": [0, False], "cache_keys": ["a", "b"], "cache_steps": ["s", "s"]},
        {"cache_runs": [0, 1], "cache_keys": ["a", "b" * 1025], "cache_steps": ["s", "s"]},
        {"metadata": [b"", b"x" * (1024 * 1024 + 1)]},
    ],
)
def test_a_listing_from_a_stranger_is_checked_column_by_column(change: dict[str, Any]) -> None:
    with pytest.raises(RecordError, match=r"^archive x "):
        Listing.decode(_tampered(change), where="archive x").complete()


@pytest.mark.parametrize(
    "change",
    [
        {"cache_runs": [0, 7], "cache_keys": ["a", "b"], "cache_steps": ["s", "s"]},
        {"value_runs": [0], "value_names": [], "value_data": [], "value_numbers": []},
        {"cache_runs": [0, 1], "cache_keys": ["a", "b" * 1025], "cache_steps": ["s", "s"]},
        {"value_data": "not a column"},
        {"cache_steps": None},
    ],
)
def test_a_listings_value_and_cache_columns_are_checked_when_first_used(
    change: dict[str, Any],
) -> None:
    # A fresh clone lists runs from their run columns: the other two thirds of a
    # listing are read and checked by whatever uses them, every time until valid.
    listing = Listing.decode(_tampered(change), where="archive x")
    assert listing.refs == _listing().refs
    for _ in range(2):
        with pytest.raises(RecordError, match=r"^archive x "):
            _ = listing.cache_keys
        with pytest.raises(RecordError, match=r"^archive x "):
            listing.complete()
    assert Listing.decode(_listing().encode(), where="x").cache_keys == _listing().cache_keys


def test_damage_inside_a_value_column_is_found_when_the_column_is_read() -> None:
    envelope = msgpack.unpackb(_listing().encode(), raw=False)
    packed = msgpack.packb(envelope, use_bin_type=True)
    key = msgpack.packb(envelope["data"]["cache_keys"][0])
    assert packed.count(key) == 1
    # The same length, but not UTF-8: msgpack is walked over, not decoded, at first.
    damaged = packed.replace(key, key[:1] + b"\xff" * (len(key) - 1))
    listing = Listing.decode(damaged, where="archive x")
    with pytest.raises(RecordError, match=r"^archive x has a damaged listing"):
        listing.complete()


def _envelope(data: Any) -> bytes:
    return msgpack.packb({"schema": 1, "kind": "archive", "data": data})


@pytest.mark.parametrize(
    "data",
    [
        _listing().encode() + b"\x00",  # trailing bytes
        _envelope({1: []}),  # a key strict_map_key refuses
        _envelope({"refs": [{(1,): 2}]}),  # one inside a column
        _envelope({"x": [1]}).replace(b"\x83", b"\x84", 1)
        + msgpack.packb("data")
        + msgpack.packb([]),  # a key twice: the last counts, and this "data" is no map
        _envelope([]),
        msgpack.packb({"schema": 1, "kind": "archive"}),
        _envelope({"cache_keys": ["a"]})[:-2],  # cut inside a column walked over
    ],
)
def test_a_listing_envelope_is_read_as_a_whole_unpack_would(data: bytes) -> None:
    with pytest.raises(RecordError, match=r"^archive x "):
        Listing.decode(data, where="archive x")


def test_a_listing_of_another_schema_or_no_listing_at_all_is_refused() -> None:
    newer = msgpack.unpackb(_listing().encode(), raw=False)
    newer["schema"] = 2
    with pytest.raises(RecordError, match="upgrade"):
        Listing.decode(msgpack.packb(newer), where="archive x")
    for garbage in (b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"kind": "run"})):
        with pytest.raises(RecordError):
            Listing.decode(garbage, where="archive x")


@pytest.mark.parametrize("bulk", [1, 100_000])
def test_a_fresh_index_loads_runs_held_by_two_archives_once(
    monkeypatch: pytest.MonkeyPatch, bulk: int
) -> None:
    # A bulk load (indexes dropped, rows numbered in one pass) and a small one agree:
    # each run is listed once, held by every archive listing it, its ref still unique.
    monkeypatch.setattr(index_sync, "_BULK", bulk)
    store = MemoryStore()
    made = record_memory_runs(store, 60)
    index = RunIndex(store)
    assert fold_old_runs(store, index, keep=10, batch=20) == 40
    expected = {row.ref: row for row in index.runs()}
    twice = sorted(made)[:5]  # also listed by a second archive, made by another clone
    archive, objects = build_archive(sorted_listing(index.listing(twice)))
    store.write_objects(objects)
    store.refs.compare_and_swap(archive_ref(archive.id), None, archive.id)
    index.close()
    fresh = RunIndex(store)
    fresh.refresh()
    listed = fresh.runs()
    assert len(listed) == len(made)
    assert {row.ref: row for row in listed} == expected
    holders = fresh.holders_of(twice)
    assert all(len(holders[ref][1]) == 2 and holders[ref][0] == made[ref] for ref in twice)
    db = sqlite3.connect(fresh.path) if fresh.path != ":memory:" else fresh._db
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO runs (ref, sha, pipeline, run_name, status) VALUES (?, '', '', '', '')",
            (twice[0],),
        )
    fresh.close()


def test_a_bulk_load_leaves_the_look_up_indexes_to_the_first_look_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fresh clone's listing builds the indexes it reads by; runs show builds the rest."""
    monkeypatch.setattr(index_sync, "_BULK", 10)
    store = MemoryStore()
    made = record_memory_runs(store, 40)
    index = RunIndex(store)
    index.refresh()
    assert fold_old_runs(store, index, keep=0, batch=20) == 40
    index.close()
    fresh = RunIndex(store)
    fresh.refresh()  # a bulk load of 40 archived runs

    def indexes() -> set[str]:
        return {row[1] for row in fresh._db.execute("PRAGMA index_list(runs)")}

    assert indexes() == {"runs_by_ref", "runs_by_time"}
    assert [row.ref for row in fresh.runs(limit=2)] == sorted(made)[::-1][:2]
    assert indexes() == {"runs_by_ref", "runs_by_time"}
    ref = sorted(made)[7]
    assert [row.ref for row in fresh.find("run-00007")] == [ref]
    assert [row.ref for row in fresh.find(made[ref][:8])] == [ref]
    assert indexes() == {"runs_by_ref", "runs_by_time", "runs_by_name", "runs_by_sha"}
    assert fresh.count(pipeline="p") == 40
    assert fresh.pipelines() == ["p"]
    assert "runs_by_pipeline" in indexes()
    plan = fresh._db.execute("EXPLAIN QUERY PLAN SELECT id FROM runs WHERE sha = 'a'").fetchall()
    assert "runs_by_sha" in str(plan)
    fresh.close()
