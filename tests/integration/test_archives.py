"""Old runs folded into archive refs: few refs, every run still listed, read, reused and rerun."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from itertools import combinations
from pathlib import Path

import pytest
from many_runs import git_refs, record_runs

from mlops_lite import Client
from mlops_lite.errors import RecordError
from mlops_lite.operations import retention, sharing
from mlops_lite.operations.fsck import check_runs
from mlops_lite.store import GitStore
from mlops_lite.store.archives import ARCHIVE_PREFIX, ROOT_FANOUT, build_archive, read_archive
from mlops_lite.store.folding import fold_archives, fold_old_runs
from mlops_lite.store.index import RunIndex
from mlops_lite.store.layout import RUNS_PREFIX
from mlops_lite.store.objects import COMMIT, GitObject, make_object
from tests.conftest import git, run_script

PIPELINE = textwrap.dedent(
    """
    import sys
    from mlops_lite import pipeline, step

    @step
    def make(n: int) -> list[int]:
        print("executing make", n)
        return list(range(n))

    @step
    def total(values: list[int]) -> int:
        return sum(values)

    @pipeline
    def sums(n: int = 3):
        total(make(n))

    if __name__ == "__main__":
        for n in map(int, sys.argv[1:]):
            run = sums.with_options(quiet=True)(n=n)
            print("RUN", run.sha, run.name)
    """
)


def fold(root: Path, *, keep: int, batch: int) -> int:
    with GitStore(str(root)) as store:
        index = RunIndex(store)
        try:
            return fold_old_runs(store, index, keep=keep, batch=batch)
        finally:
            index.close()


def commit_pipeline(root: Path) -> None:
    (root / "sums.py").write_text(PIPELINE)
    (root / ".gitignore").write_text("__pycache__/\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "pipeline")


def test_old_runs_fold_into_archives_and_every_run_stays_listed_with_its_sha(
    project: Path,
) -> None:
    made = record_runs(project, 250)
    assert fold(project, keep=50, batch=100) == 200
    refs = git_refs(project)
    archives = [ref for ref in refs if ref.startswith(ARCHIVE_PREFIX)]
    assert len(archives) == 2 and len([r for r in refs if r.startswith(RUNS_PREFIX)]) == 50
    # An archive is named by its own commit, which reaches every run it holds.
    for ref in archives:
        assert ref.removeprefix(ARCHIVE_PREFIX) == refs[ref]
        parents = git(project, "rev-list", "--parents", "-n", "1", refs[ref]).split()[1:]
        assert len(parents) == 100 and set(parents) <= set(made.values())
    with Client() as client:
        listed = {run.ref: run.sha for run in client.list_pipeline_runs()}
        assert listed == made
        old = client.get_pipeline_run(made[f"{RUNS_PREFIX}train/run-00007"][:12])
        assert old.name == "run-00007" and old.parameters == {"n": 7}
        assert old.steps["make"].output.load() == "7"
    git(project, "gc", "-q", "--prune=now")
    git(project, "fsck", "--strict", "--no-dangling")
    with Client() as client:
        assert client.get_pipeline_run("run-00003").steps["make"].output.load() == "3"
    report = check_runs(project)  # mlops-lite fsck reads archived runs too
    assert {check.ref: check.sha for check in report.runs} == made
    assert all(check.ok for check in report.runs)


def test_the_same_runs_fold_into_the_same_archive_in_every_clone(
    project: Path, tmp_path: Path
) -> None:
    record_runs(project, 30)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/mlops/*:refs/mlops/*")
    fold(project, keep=10, batch=20)
    fold(clone, keep=10, batch=20)
    ours, theirs = git_refs(project, ARCHIVE_PREFIX), git_refs(clone, ARCHIVE_PREFIX)
    assert ours == theirs and len(ours) == 1


def test_an_archived_run_is_a_cache_hit_and_can_be_rerun(project: Path) -> None:
    commit_pipeline(project)
    first = run_script(project, "sums.py", "4", "5", "6", "7")
    shas = [line.split()[1] for line in first.stdout.splitlines() if line.startswith("RUN")]
    assert fold(project, keep=1, batch=2) == 2
    with Client() as client:
        run = client.get_pipeline_run(shas[0])
        assert [r.sha for r in client.list_pipeline_runs()] == shas[::-1]
    held = git_refs(project, RUNS_PREFIX)
    assert shas[0] not in held.values() and shas[3] in held.values()
    again = run_script(project, "sums.py", "4")
    assert "executing make" not in again.stdout
    with Client() as client:
        latest = client.list_pipeline_runs(limit=1)[0]
        assert latest.steps["make"].cached_from == {
            "pipeline": "sums", "run": run.name, "step": "make",
        }  # fmt: skip
    rerun = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "rerun", shas[0][:10]],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert "reproduced" in rerun.stdout


def test_an_archive_whose_listing_is_not_its_parents_is_refused(project: Path) -> None:
    made = record_runs(project, 3)
    first, second, third = sorted(made)
    with GitStore(str(project)) as store:
        index = RunIndex(store)
        index.refresh()
        listing = index.listing([first, second])
        index.close()
        honest, objects = build_archive(listing)
        store.write_objects(objects).release()
        assert read_archive(store.read_object, honest.id).listing.refs == [first, second]
        # The same listing on a commit that reaches another run than it names.
        lying = _with_parents(objects[2], [made[first], made[third]])
        store.write_objects([lying]).release()
        with pytest.raises(RecordError, match="lists other runs than it holds"):
            read_archive(store.read_object, lying.id)


def _with_parents(commit: GitObject, parents: list[str]) -> GitObject:
    lines = [line for line in bytes(commit.data).split(b"\n") if not line.startswith(b"parent ")]
    lines[1:1] = [b"parent " + parent.encode() for parent in parents]
    return make_object(COMMIT, b"\n".join(lines))


def test_a_copied_or_moved_repository_lists_each_run_once(project: Path, tmp_path: Path) -> None:
    commit_pipeline(project)
    run_script(project, "sums.py", "2", "3")
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True)
    run_script(project, "sums.py", "4")  # the original changes after the copy
    run_script(copy, "sums.py", "5")
    with Client(copy) as client:
        names = [run.name for run in client.list_pipeline_runs()]
        assert len(names) == len(set(names)) == 3
        client.get_pipeline_run(names[-1])  # one match, not two
    moved = tmp_path / "moved"
    os.rename(copy, moved)
    with Client(moved) as client:
        assert [run.name for run in client.list_pipeline_runs()] == names


def fold_all(root: Path, *, batch: int, fanout: int) -> None:
    """Every run into archives of ``batch``, archives into roots of ``fanout``."""
    with GitStore(str(root)) as store:
        index = RunIndex(store)
        try:
            fold_old_runs(store, index, keep=0, batch=batch, everything=True)
            fold_archives(store, index, fanout=fanout)
        finally:
            index.close()


def listed(root: Path) -> dict[str, str]:
    with Client(root) as client:
        return {run.ref: run.sha for run in client.list_pipeline_runs()}


def test_two_clones_folding_into_different_roots_converge_and_lose_no_run(
    project: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    made = record_runs(project, 40)
    git(project, "push", "-q", str(bare), "main")
    sharing.push(str(bare), path=project, quiet=True)
    bob = tmp_path / "bob"
    git(tmp_path, "clone", "-q", str(bare), str(bob))
    sharing.pull(str(bare), path=bob, quiet=True)
    # Both record more runs, at the same times, and fold before exchanging anything.
    made |= record_runs(project, 20, first=40)
    made |= record_runs(bob, 20, pipeline="eval", first=40)
    fold_all(project, batch=4, fanout=4)
    fold_all(bob, batch=4, fanout=4)
    assert git_refs(project, ARCHIVE_PREFIX) != git_refs(bob, ARCHIVE_PREFIX)
    for _ in range(3):
        for clone in (project, bob):
            sharing.pull(str(bare), path=clone, quiet=True)
            sharing.push(str(bare), path=clone, quiet=True)
    tips = git_refs(bare, ARCHIVE_PREFIX)
    assert git_refs(project, ARCHIVE_PREFIX) == tips == git_refs(bob, ARCHIVE_PREFIX)
    assert len(tips) < 2 * ROOT_FANOUT  # fewer than ROOT_FANOUT per height
    assert listed(project) == made == listed(bob)
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(bare), str(fresh))
    pulled = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "pull", str(bare)],
        cwd=fresh, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    # Runs counted once, archive refs named as such (not as "-N other refs").
    assert pulled.stdout.startswith(f"pulled {len(made)} runs (") and "archive ref" in pulled.stdout
    assert "other ref" not in pulled.stdout, pulled.stdout
    assert listed(fresh) == made
    git(bare, "gc", "-q", "--prune=now")
    git(bare, "fsck", "--strict", "--no-dangling")


def test_a_pull_into_a_fresh_clone_leaves_the_index_to_the_first_listing(
    project: Path, tmp_path: Path
) -> None:
    """The clone's index is built once, by the first command that reads runs, not twice."""
    bare = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    made = record_runs(project, 40)
    fold_all(project, batch=4, fanout=4)  # roots over archives of 4 runs
    git(project, "push", "-q", str(bare), "main")
    sharing.push(str(bare), path=project, quiet=True)
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(bare), str(fresh))
    pulled = sharing.pull(str(bare), path=fresh, quiet=True)
    assert pulled.archived_runs == 40 and pulled.runs == 40  # counted from the commits
    assert git_refs(fresh, ARCHIVE_PREFIX) == git_refs(bare, ARCHIVE_PREFIX)
    index_file = fresh / ".git" / "mlops-lite" / "index.sqlite3"

    def archives_indexed() -> int:
        with sqlite3.connect(index_file) as db:
            return int(db.execute("SELECT COUNT(*) FROM holders").fetchone()[0])

    assert archives_indexed() == 0
    assert listed(fresh) == made
    assert archives_indexed() > 0
    again = sharing.pull(str(bare), path=fresh, quiet=True)  # indexed now: tidied as usual
    assert again.runs == 0 and listed(fresh) == made
    git(fresh, "fsck", "--strict", "--no-dangling")


def test_a_run_deleted_under_roots_goes_with_git_gc(project: Path) -> None:
    made = record_runs(project, 32)
    fold_all(project, batch=2, fanout=2)  # 16 archives, four heights of roots above them
    [tip] = git_refs(project, ARCHIVE_PREFIX).values()
    victim = f"{RUNS_PREFIX}train/run-00005"
    retention.delete_runs(["run-00005"], path=project)
    assert git_refs(project, ARCHIVE_PREFIX).values() != {tip}
    git(project, "gc", "-q", "--prune=now")
    git(project, "fsck", "--strict", "--no-dangling")
    gone = subprocess.run(["git", "cat-file", "-e", made[victim]], cwd=project)
    assert gone.returncode != 0  # nothing reaches it any more: gc dropped it
    assert listed(project) == {ref: sha for ref, sha in made.items() if ref != victim}
    with Client(project) as client:
        assert client.get_pipeline_run("run-00006").steps["make"].output.load() == "6"


@pytest.mark.parametrize("indexed", [False, True], ids=["fresh clone", "archive indexed"])
def test_a_pull_takes_no_archive_whose_runs_an_archive_it_took_already_holds(
    project: Path, tmp_path: Path, indexed: bool
) -> None:
    # The pull decides archive by archive (in ref order) and indexes them once at
    # the end: an archive taken earlier in the same pull must count as held. Into a
    # fresh clone it reads only the archives' own commits (``_take_unread``); into
    # one whose index holds an archive, it reads down through them (``_sync_control``).
    made = record_runs(project, 16)
    assert fold(project, keep=0, batch=8) == 16
    with GitStore(str(project)) as store:
        index = RunIndex(store)
        index.refresh()
        archives = {sha: read_archive(store.read_object, sha) for sha in archive_tips(project)}
        # An archive of some of the runs of another, read after it. Ids sort at random:
        # that none of the 2 x 254 subsets sorts after its archive is about 1 in 65,000.
        candidates = (
            (container, build_archive(index.listing(list(chosen))))
            for container, archive in sorted(archives.items())
            for size in range(1, 8)
            for chosen in combinations(archive.listing.refs, size)
        )
        redundant, objects = next(
            built for container, built in candidates if built[0].id > container
        )
        index.close()
        store.write_objects(objects).release()
        store.refs.compare_and_swap(ARCHIVE_PREFIX + redundant.id, None, redundant.id)
    bare = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(project, "push", "-q", str(bare), "main")
    sharing.push(str(bare), path=project, quiet=True)
    assert redundant.id in git_refs(bare, ARCHIVE_PREFIX).values()
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(bare), str(fresh))
    own: dict[str, str] = {}
    if indexed:
        own = record_runs(fresh, 2, pipeline="own", first=100)
        assert fold(fresh, keep=0, batch=2) == 2
    own_archives = set(git_refs(fresh, ARCHIVE_PREFIX).values())
    sharing.pull(str(bare), path=fresh, quiet=True)
    assert set(git_refs(fresh, ARCHIVE_PREFIX).values()) == set(archives) | own_archives
    assert listed(fresh) == made | own
    git(fresh, "fsck", "--strict", "--no-dangling")


def archive_tips(root: Path) -> set[str]:
    return set(git_refs(root, ARCHIVE_PREFIX).values())


@pytest.mark.parametrize("indexed", [False, True], ids=["fresh clone", "archive indexed"])
def test_a_pull_refuses_an_archive_ref_whose_commit_lies_and_takes_the_rest(
    project: Path, tmp_path: Path, indexed: bool
) -> None:
    """A remote's archive ref is input from whoever pushed it: checked before any ref moves."""
    made = record_runs(project, 6)
    assert fold(project, keep=0, batch=3) == 6
    honest = archive_tips(project)
    with GitStore(str(project)) as store:
        tip = min(honest)
        lying = _with_parents(make_object(COMMIT, store.read_object(tip, COMMIT)), [tip])
        store.write_objects([lying]).release()
    bare = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(project, "push", "-q", str(bare), "main")
    sharing.push(str(bare), path=project, quiet=True)
    # Pushed by hand, as a hostile teammate would: a well-named ref, a lying commit.
    git(project, "push", "-q", str(bare), f"{lying.id}:{ARCHIVE_PREFIX}{lying.id}")
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(bare), str(fresh))
    own: dict[str, str] = {}
    if indexed:
        own = record_runs(fresh, 2, pipeline="own", first=100)
        assert fold(fresh, keep=0, batch=2) == 2
    mine = archive_tips(fresh)
    pulled = sharing.pull(str(bare), path=fresh, quiet=True)
    assert "not a readable archive" in pulled.rejected[ARCHIVE_PREFIX + lying.id]
    assert archive_tips(fresh) == honest | mine
    assert listed(fresh) == made | own
    git(fresh, "fsck", "--strict", "--no-dangling")
