"""Roots (archives of archives) on the memory store: folded, read, deleted through, refused."""

from __future__ import annotations

import time
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_lite.store import GitStore, MemoryStore, index_sync
from mlops_lite.store.archives import (
    ARCHIVE_PREFIX,
    Root,
    archive_ref,
    archive_tree,
    build_root,
    count_held_runs,
    read_node,
)
from mlops_lite.store.folding import drop_covered_archives, fold_archives, fold_old_runs, tidy
from mlops_lite.store.index import RunIndex
from mlops_lite.store.layout import RUNS_PREFIX
from mlops_lite.store.objects import (
    COMMIT,
    MODE_BLOB,
    TREE,
    GitObject,
    Identity,
    blob,
    commit,
    make_object,
    tree,
)
from mlops_lite.store.removal import remove_runs
from tests.unit.test_archive_listings import CountingStore, record_memory_runs


def archive_tips(store: MemoryStore) -> set[str]:
    return set(store.refs.list(ARCHIVE_PREFIX).values())


def runs_under(store: MemoryStore) -> dict[str, str]:
    """``{run ref: sha}`` every archive ref holds, read from git objects (not the index)."""
    found: dict[str, str] = {}
    for tip in archive_tips(store):
        held = archive_tree(store.read_object, tip)
        assert not held.skipped
        found.update(held.runs())
    return found


def listed(store: MemoryStore) -> dict[str, str]:
    index = RunIndex(store)  # a fresh clone's index, built from nothing
    try:
        index.refresh()
        return {row.ref: row.sha for row in index.runs()}
    finally:
        index.close()


def test_archive_refs_fold_into_roots_by_height_and_every_run_stays_listed() -> None:
    store = MemoryStore()
    made = record_memory_runs(store, 340)
    index = RunIndex(store)
    assert fold_old_runs(store, index, keep=20, batch=10) == 320  # 32 archives
    assert len(archive_tips(store)) == 32
    assert fold_archives(store, index, fanout=4) == 10  # 8 roots, then 2 of roots
    tips = archive_tips(store)
    assert len(tips) == 2
    heights = sorted(len(archive_tree(store.read_object, tip).roots) for tip in tips)
    assert heights == [5, 5]  # each: a root of 4 roots of 4 archives
    assert fold_archives(store, index, fanout=4) == 0  # nothing more to fold
    assert runs_under(store) | store.refs.list(RUNS_PREFIX) == made
    assert {row.ref: row.sha for row in index.runs()} == made
    assert listed(store) == made
    index.close()


def test_a_root_is_dated_like_its_newest_archive_never_now() -> None:
    store = MemoryStore()
    record_memory_runs(store, 40)
    index = RunIndex(store)
    fold_old_runs(store, index, keep=0, batch=10)
    fold_archives(store, index, fanout=4)
    [tip] = archive_tips(store)
    root = read_node(store.read_object, tip)
    assert isinstance(root, Root)
    newest_run = 1_700_000_000 + 39
    assert root.timestamp == newest_run < time.time() - 86400
    index.close()


def test_an_archive_known_to_the_index_costs_nothing_under_a_new_root() -> None:
    store = CountingStore()
    record_memory_runs(store, 80)
    index = RunIndex(store)
    fold_old_runs(store, index, keep=0, batch=10)
    index.refresh()
    store.reads = 0
    fold_archives(store, index, fanout=8)  # one root over the 8 archives the index read
    # Writing it reads each archive's commit for its date; the index reads only
    # the root's commit, tree and listing, not the 8 archives below it.
    assert store.reads == 8 + 3
    index.close()


def test_deleting_a_run_under_roots_rewrites_every_root_above_it() -> None:
    store = MemoryStore()
    made = record_memory_runs(store, 64)
    index = RunIndex(store)
    fold_old_runs(store, index, keep=0, batch=4)
    fold_archives(store, index, fanout=4)  # 16 archives, 4 roots, 1 root of roots
    [before] = archive_tips(store)
    victim = sorted(made)[5]
    remove_runs(store, index, {victim: made[victim]}, for_the_team=True)
    [after] = archive_tips(store)
    assert after != before
    under = runs_under(store)
    assert victim not in under and under == {r: s for r, s in made.items() if r != victim}
    assert made[victim] not in under.values()
    assert {row.ref for row in index.runs()} == set(made) - {victim}
    assert set(listed(store)) == set(made) - {victim}
    index.close()


def test_deleting_every_run_of_an_archive_drops_it_from_its_root() -> None:
    store = MemoryStore()
    made = record_memory_runs(store, 8)
    index = RunIndex(store)
    fold_old_runs(store, index, keep=0, batch=2)
    fold_archives(store, index, fanout=4)
    first_two = dict(sorted(made.items())[:2])
    remove_runs(store, index, first_two, for_the_team=True)
    [tip] = archive_tips(store)
    root = read_node(store.read_object, tip)
    assert isinstance(root, Root) and len(root.children) == 3
    assert set(runs_under(store)) == set(made) - set(first_two)
    index.close()


def test_roots_holding_the_same_archives_converge_on_one() -> None:
    store = MemoryStore()
    record_memory_runs(store, 50)
    index = RunIndex(store)
    fold_old_runs(store, index, keep=0, batch=10)
    archives = sorted(archive_tips(store))
    # Two teammates folded overlapping archives into different roots; both roots,
    # and one of the archives, are here as refs.
    times = {sha: 1 for sha in archives}
    small, small_objects = build_root({sha: 1 for sha in archives[:3]})
    large, large_objects = build_root(times)
    store.write_objects(small_objects + large_objects)
    store.refs.update_many(
        [(archive_ref(small.id), None, small.id), (archive_ref(large.id), None, large.id)]
        + [(archive_ref(sha), sha, None) for sha in archives[1:]]
    )
    assert drop_covered_archives(store, index) == 2
    assert archive_tips(store) == {large.id}
    assert len(listed(store)) == 50
    index.close()


def test_a_repository_laid_out_by_the_previous_version_is_read_and_refolded() -> None:
    # As mlops-lite before roots kept runs: archives of 1,000 runs, 1,000 run refs.
    store = MemoryStore()
    made = record_memory_runs(store, 2300)
    index = RunIndex(store)
    assert fold_old_runs(store, index, keep=1000, batch=1000) == 1000
    listing_before = index.runs()
    assert len(store.refs.list(RUNS_PREFIX)) == 1300
    tidy(store, index)
    assert len(store.refs.list(RUNS_PREFIX)) <= 200
    assert len(archive_tips(store)) < 8 + 8
    assert index.runs() == listing_before
    assert listed(store) == made
    index.close()


# hostile roots --------------------------------------------------------------------------

_TEAMMATE = Identity("mate", "mate@example.com")


def _crafted(store: MemoryStore, parents: list[str], listed_children: object) -> str:
    """A root-shaped commit whose listing says ``listed_children``, written with its ref."""
    data = msgpack.packb(
        {"schema": 1, "kind": "archive-root", "data": {"archives": listed_children}},
        use_bin_type=True,
    )
    listing = blob(data)
    folder = tree({"archives.msgpack": (MODE_BLOB, listing.id)})
    made = commit(
        tree_id=folder.id, parents=parents, author=_TEAMMATE, timestamp=1,
        tz_offset_minutes=0, message="crafted\n",
    )  # fmt: skip
    store.write_objects([listing, folder, made])
    store.refs.compare_and_swap(archive_ref(made.id), None, made.id)
    return made.id


def _one_archive(count: int = 5) -> tuple[MemoryStore, dict[str, str], str]:
    store = MemoryStore()
    made = record_memory_runs(store, count)
    index = RunIndex(store)
    fold_old_runs(store, index, keep=0, batch=count)
    index.close()
    [archive] = archive_tips(store)
    return store, made, archive


def test_a_root_listing_other_archives_than_its_parents_is_skipped() -> None:
    store, made, archive = _one_archive()
    store.refs.update_many([(archive_ref(archive), archive, None)])
    crafted = _crafted(store, [archive], [archive, "1" * 40])
    held = archive_tree(store.read_object, crafted)
    assert "lists other archives than it holds" in held.skipped[crafted]
    assert listed(store) == {}  # nothing listed from it, and nothing raised


def test_a_root_over_run_commits_or_damaged_listings_is_skipped_not_raised() -> None:
    store, made, archive = _one_archive()
    run = next(iter(made.values()))
    over_a_run = _crafted(store, [run], [run])
    damaged = _crafted(store, [archive], "not a list")
    tree_of = archive_tree(store.read_object, over_a_run)
    assert run in tree_of.skipped  # a run commit is no archive
    assert damaged in archive_tree(store.read_object, damaged).skipped
    assert listed(store) == made  # the honest archive still lists its runs


def test_a_root_deeper_than_the_bound_is_read_only_down_to_it() -> None:
    store, made, archive = _one_archive()
    store.refs.update_many([(archive_ref(archive), archive, None)])
    below = archive
    for _ in range(40):
        below = _crafted(store, [below], [below])
        store.refs.update_many([(archive_ref(below), below, None)])
    store.refs.compare_and_swap(archive_ref(below), None, below)
    held = archive_tree(store.read_object, below)
    assert len(held.roots) == 17 and not held.archives
    assert any("deeper than 16 levels" in reason for reason in held.skipped.values())
    assert listed(store) == {}


def test_a_root_reaching_one_archive_by_many_paths_reads_it_once() -> None:
    # Each level doubles the paths to the archive at the bottom: 2**15 paths, 31 roots.
    store, made, archive = _one_archive()
    store.refs.update_many([(archive_ref(archive), archive, None)])
    level = [archive]
    for depth in range(15):
        pair = [_with_salt(store, level, f"{depth}-{side}") for side in (0, 1)]
        level = pair
    top = _crafted(store, level, level)
    reads: list[str] = []

    def counting(object_id: str, kind: int | None = None) -> bytes:
        reads.append(object_id)
        return store.read_object(object_id, kind)

    held = archive_tree(counting, top)
    assert len(held.roots) == 31 and list(held.archives) == [archive]
    # Each node once (commit, tree, listing: 3 objects for each of the 32), never per path.
    assert len(reads) <= 3 * 32
    assert listed(store) == made


def _with_salt(store: MemoryStore, children: list[str], salt: str) -> str:
    """A root over ``children`` made distinct by its message (not given a ref)."""
    data = msgpack.packb(
        {"schema": 1, "kind": "archive-root", "data": {"archives": sorted(children)}},
        use_bin_type=True,
    )
    listing = blob(data)
    folder = tree({"archives.msgpack": (MODE_BLOB, listing.id)})
    made: GitObject = commit(
        tree_id=folder.id, parents=sorted(children), author=_TEAMMATE, timestamp=1,
        tz_offset_minutes=0, message=f"{salt}\n",
    )  # fmt: skip
    store.write_objects([listing, folder, made])
    return made.id


def test_a_root_object_that_is_not_a_commit_is_skipped() -> None:
    store, made, archive = _one_archive()
    garbage = make_object(COMMIT, b"tree nonsense\n\n")
    store.write_objects([garbage])
    store.refs.compare_and_swap(archive_ref(garbage.id), None, garbage.id)
    assert garbage.id in archive_tree(store.read_object, garbage.id).skipped
    assert listed(store) == made


def test_folding_with_nothing_to_fold_reads_no_commit() -> None:
    """Push and pull tidy every time: with nothing to fold, that reads no object.

    It used to read one commit per archive ref (about 50 ms of a push at 10,000 runs).
    """
    store = CountingStore()
    record_memory_runs(store, 150)
    index = RunIndex(store)
    assert fold_old_runs(store, index, keep=0, batch=10) == 150  # 15 archives
    assert fold_archives(store, index, fanout=8) == 1  # a root of 8, and 7 archives
    assert len(archive_tips(store)) == 8  # as many refs as a root takes, no height full
    index.refresh()
    before = store.reads
    assert fold_archives(store, index, fanout=8) == 0
    assert store.reads == before
    index.close()


def test_archive_refs_found_settled_are_not_walked_again_until_they_change(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Push and pull fold archives every time: the same archive refs are walked once.

    Walking them (the index's archive graph, every root's height) cost 6 ms of each
    push at 100,000 runs. A new archive ref, or another fanout, is walked again.
    """
    # Refs changed within the last second look changed to every look (git's "racy" rule);
    # here every change is made by the test, ns apart.
    monkeypatch.setattr(index_sync, "_RACY_NS", 0)
    walks = []
    walk = RunIndex.archive_children
    monkeypatch.setattr(RunIndex, "archive_children", lambda self: walks.append(1) or walk(self))
    with GitStore.open(str(project)) as store:
        record_memory_runs(store, 150)
        index = RunIndex(store)
        assert fold_old_runs(store, index, keep=0, batch=10) == 150
        assert fold_archives(store, index, fanout=8) == 1  # a root of 8, and 7 archives
        walks.clear()
        assert fold_archives(store, index, fanout=8) == 0  # found settled: noted
        assert len(walks) == 1
        assert fold_archives(store, index, fanout=8) == 0
        another = RunIndex(store)  # another process
        assert fold_archives(store, another, fanout=8) == 0
        another.close()
        assert len(walks) == 1
        assert fold_archives(store, index, fanout=4) == 1  # 4 of the 7 archives into a root
        assert fold_archives(store, index, fanout=4) == 0
        assert fold_archives(store, index, fanout=4) == 0
        assert len(walks) == 3
        record_memory_runs(store, 10, first=150)
        assert fold_old_runs(store, index, keep=0, batch=10) == 10  # a new archive ref
        assert fold_archives(store, index, fanout=4) == 1  # it completes a group of 4
        assert len(walks) == 4
        assert len(listed(store)) == 160
        index.close()


def test_the_runs_archives_hold_are_counted_from_their_commits_alone() -> None:
    """What a pull into a fresh clone reports, before any listing is read."""
    store = CountingStore()
    made = record_memory_runs(store, 130)
    index = RunIndex(store)
    assert fold_old_runs(store, index, keep=0, batch=10, everything=True) == 130
    assert fold_archives(store, index, fanout=4) > 0  # roots of roots, and archives
    index.close()
    tips = sorted(archive_tips(store))
    assert count_held_runs(store.read_objects, tips) == len(made)
    # A tip that is not an archive (a run commit, a missing object) holds nothing counted.
    assert count_held_runs(store.read_objects, [*tips, made[min(made)], "0" * 40]) == len(made)
    assert count_held_runs(store.read_objects, []) == 0


@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_counting_the_runs_of_whatever_a_remote_sent_never_raises(data: st.DataObject) -> None:
    """Commits and trees from a teammate: cycles, wrong types, damage, missing objects."""
    shas = [f"{number:040x}" for number in range(6)]
    objects: dict[str, GitObject] = {}
    for sha in shas:
        kind = data.draw(st.sampled_from([COMMIT, TREE, 3, 99]))
        shaped = data.draw(st.booleans())
        if kind == COMMIT and shaped:
            parents = data.draw(st.lists(st.sampled_from(shas), max_size=4))
            body = f"tree {data.draw(st.sampled_from(shas))}\n"
            body += "".join(f"parent {parent}\n" for parent in parents) + "\nfuzzed\n"
            payload = body.encode()
        elif kind == TREE and shaped:
            name = data.draw(st.sampled_from(["runs.msgpack", "archives.msgpack", "other"]))
            payload = tree({name: (MODE_BLOB, data.draw(st.sampled_from(shas)))}).data
        else:
            payload = data.draw(st.binary(max_size=64))
        if data.draw(st.booleans()):
            objects[sha] = GitObject(kind, payload, sha)

    def read_objects(wanted: list[str]) -> dict[str, GitObject]:
        return {sha: objects[sha] for sha in wanted if sha in objects}

    tips = data.draw(st.lists(st.sampled_from(shas), max_size=3))
    counted = count_held_runs(read_objects, tips)
    assert 0 <= counted <= 4 * len(shas)  # each archive's parents, once
