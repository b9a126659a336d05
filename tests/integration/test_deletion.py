"""Deleting runs: gc and runs delete, pins, and deletions that stick across a team's clones."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from many_runs import git_refs, record_runs

from mlops_lite import Client
from mlops_lite.errors import ConfigError, ProtectedRunError
from mlops_lite.operations import retention, sharing
from mlops_lite.operations.sharing import TransportChoice
from mlops_lite.store.archives import ARCHIVE_PREFIX
from mlops_lite.store.layout import RUNS_PREFIX
from mlops_lite.store.ledgers import DELETED_REF, PINS_REF
from tests.conftest import git, run_script

RUN = f"{RUNS_PREFIX}train/run-"


def listed(root: Path) -> dict[str, str]:
    with Client(root) as client:
        return {run.ref: run.sha for run in client.list_pipeline_runs()}


def clone_of(bare: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(bare), str(where))
    sharing.pull(str(bare), path=where, quiet=True)
    return where


@pytest.fixture
def team(project: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A project with 6 runs pushed to a bare remote."""
    bare = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    record_runs(project, 6)
    git(project, "push", "-q", str(bare), "main")
    sharing.push(str(bare), path=project, quiet=True)
    return project, bare


@pytest.mark.parametrize("transport", ["git", "dulwich"])
def test_a_run_deleted_for_the_team_stays_deleted_in_every_clone(
    team: tuple[Path, Path], tmp_path: Path, transport: TransportChoice
) -> None:
    alice, bare = team
    bob = clone_of(bare, tmp_path / "bob")
    carol = clone_of(bare, tmp_path / "carol")
    victim = RUN + "00002"
    assert victim in listed(bob) and victim in git_refs(carol)
    result = retention.delete_runs(["run-00002"], remote=str(bare), path=alice)
    assert [row.ref for row in result.deleted] == [victim]
    assert victim not in git_refs(bare) and DELETED_REF in git_refs(bare)
    # Carol never pulled: her push must not bring it back, and loses it here too.
    sharing.push(str(bare), path=carol, quiet=True, transport=transport)
    assert victim not in git_refs(bare)
    assert victim not in git_refs(carol) and victim not in listed(carol)
    sharing.pull(str(bare), path=bob, quiet=True, transport=transport)
    assert victim not in listed(bob) and victim not in git_refs(bob)
    assert len(listed(bob)) == 5
    sharing.pull(str(bare), path=alice, quiet=True, transport=transport)
    assert victim not in listed(alice)
    git(bare, "fsck", "--strict", "--no-dangling")


def test_a_run_deleted_here_only_is_not_pulled_back_and_stays_on_the_remote(
    team: tuple[Path, Path],
) -> None:
    alice, bare = team
    retention.delete_runs(["run-00001"], path=alice)
    assert RUN + "00001" not in listed(alice)
    sharing.pull(str(bare), path=alice, quiet=True)
    assert RUN + "00001" not in listed(alice) and RUN + "00001" not in git_refs(alice)
    sharing.push(str(bare), path=alice, quiet=True)
    assert RUN + "00001" in git_refs(bare)


def test_archives_travel_and_a_remote_keeps_few_refs_whoever_pushes(
    project: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    made = record_runs(project, 60)
    git(project, "push", "-q", str(bare), "main")
    sharing.push(str(bare), path=project, quiet=True)
    late = clone_of(bare, tmp_path / "late")  # holds all 60 as refs of their own
    assert retention.tidy(project, keep=10) == 50
    sharing.push(str(bare), path=project, quiet=True)
    remote = git_refs(bare)
    assert len([r for r in remote if r.startswith(RUNS_PREFIX)]) == 10
    assert len([r for r in remote if r.startswith(ARCHIVE_PREFIX)]) == 1
    # A teammate with the old individual refs pushes: they do not come back.
    result = sharing.push(str(bare), path=late, quiet=True)
    assert not result.created
    assert git_refs(bare) == remote
    assert len([r for r in git_refs(late) if r.startswith(RUNS_PREFIX)]) == 10
    fresh = clone_of(bare, tmp_path / "fresh")
    assert listed(fresh) == made == listed(late)
    # Deleting an archived run for the team rewrites the archive, everywhere.
    retention.delete_runs(["run-00003"], remote=str(bare), path=project)
    sharing.pull(str(bare), path=fresh, quiet=True)
    assert set(listed(fresh)) == set(made) - {RUN + "00003"}
    [archive] = [sha for ref, sha in git_refs(bare).items() if ref.startswith(ARCHIVE_PREFIX)]
    assert archive not in remote.values()
    git(bare, "gc", "-q", "--prune=now")
    git(bare, "fsck", "--strict", "--no-dangling")
    with Client(fresh) as client:
        assert client.get_pipeline_run("run-00004").steps["make"].output.load() == "4"


def test_pinned_runs_are_never_deleted_and_pins_travel(
    team: tuple[Path, Path], tmp_path: Path
) -> None:
    alice, bare = team
    retention.pin_runs(["run-00000"], path=alice)
    sharing.push(str(bare), path=alice, quiet=True)
    bob = clone_of(bare, tmp_path / "bob")
    assert PINS_REF in git_refs(bob)
    with pytest.raises(ProtectedRunError, match="unpin"):
        retention.delete_runs(["run-00000", "run-00001"], path=bob)
    assert len(listed(bob)) == 6  # nothing was deleted
    result = retention.gc(keep_last=0, path=bob)
    assert result.kept == {RUN + "00000": "pinned"}
    assert list(listed(bob)) == [RUN + "00000"]
    retention.pin_runs(["run-00000"], unpin=True, path=bob)
    assert retention.gc(keep_last=0, path=bob).deleted


def test_gc_keeps_the_newest_of_each_pipeline_and_runs_of_tagged_code(project: Path) -> None:
    first = record_runs(project, 4, pipeline="train")
    git(project, "tag", "v1")
    git(project, "commit", "-q", "--allow-empty", "-m", "later")
    record_runs(project, 3, pipeline="train", first=4)
    record_runs(project, 3, pipeline="score", first=4)
    with pytest.raises(ConfigError, match="--keep-last"):
        retention.gc(path=project)
    planned = retention.gc(keep_last=2, older_than="90d", dry_run=True, path=project)
    assert sorted(row.ref.removeprefix(RUNS_PREFIX) for row in planned.deleted) == [
        "score/run-00004",
        *(f"train/run-0000{n}" for n in range(5)),
    ]
    assert planned.freed_bytes and planned.freed_bytes > 0
    assert len(listed(project)) == 10  # a dry run deletes nothing
    kept = retention.gc(keep_last=2, keep_tagged=True, path=project)
    assert set(kept.kept) == set(first)  # made from the tagged commit
    assert {ref.rsplit("/", 1)[1] for ref in listed(project)} == {
        "run-00000", "run-00001", "run-00002", "run-00003", "run-00005", "run-00006",
    }  # fmt: skip
    assert set(listed(project)) >= {f"{RUNS_PREFIX}score/run-00005"}


def test_the_index_shrinks_after_many_runs_are_deleted(project: Path) -> None:
    record_runs(project, 1500)
    listed(project)
    index = project / ".git" / "mlops-lite" / "index.sqlite3"
    full = index.stat().st_size
    retention.gc(keep_last=100, path=project)
    assert len(listed(project)) == 100
    assert index.stat().st_size < full / 2


SUMS = textwrap.dedent(
    """
    import sys
    from mlops_lite import pipeline, step

    @step
    def make(n: int) -> list[int]:
        print("executing make", n)
        return list(range(n))

    @pipeline
    def sums(n: int = 3):
        make(n)

    if __name__ == "__main__":
        run = sums.with_options(quiet=True)(n=int(sys.argv[1]))
        print("RUN", run.name, run.steps["make"].output.load())
    """
)


def test_a_kept_run_keeps_the_outputs_it_reused_from_a_deleted_one(project: Path) -> None:
    (project / "sums.py").write_text(SUMS)
    (project / ".gitignore").write_text("__pycache__/\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "sums")
    [line] = [
        line
        for line in run_script(project, "sums.py", "5").stdout.splitlines()
        if line.startswith("RUN")
    ]
    original = line.split()[1]
    reused = run_script(project, "sums.py", "5")
    assert "executing make" not in reused.stdout
    done = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "runs", "delete", original],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "deleted 1 run" in done.stdout
    git(project, "gc", "-q", "--prune=now")
    git(project, "fsck", "--strict", "--no-dangling")
    with Client() as client:
        [kept] = client.list_pipeline_runs()
        assert kept.steps["make"].output.load() == [0, 1, 2, 3, 4]
        assert kept.steps["make"].cached_from["run"] == original  # a name, kept as recorded
    again = run_script(project, "sums.py", "5")
    assert "executing make" not in again.stdout  # still a cache hit, on the kept run


def test_gc_keeps_a_run_whose_outputs_a_kept_run_reuses_and_says_so(project: Path) -> None:
    (project / "sums.py").write_text(SUMS)
    (project / ".gitignore").write_text("__pycache__/\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "sums")
    names = []
    for n in ("5", "5", "6"):  # the second reuses the first's `make`; the third executes
        [line] = [
            line
            for line in run_script(project, "sums.py", n).stdout.splitlines()
            if line.startswith("RUN")
        ]
        names.append(line.split()[1])
    original, reusing, other = names
    shown = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "gc", "--keep-last", "2", "--dry-run"],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "would delete 0 runs; kept 1 that would have gone:" in shown.stdout
    assert f"sums/{original}: kept run sums/{reusing} reuses its outputs" in shown.stdout
    result = retention.gc(keep_last=2, path=project)
    assert result.deleted == []
    assert list(result.kept) == [f"{RUNS_PREFIX}sums/{original}"]
    assert f"{reusing} reuses its outputs" in result.kept[f"{RUNS_PREFIX}sums/{original}"]
    # Once the reusing run goes too, nothing needs the original any more.
    result = retention.gc(keep_last=1, path=project)
    assert sorted(row.run_name for row in result.deleted) == sorted([original, reusing])
    assert [run.name for run in Client(project).list_pipeline_runs()] == [other]


MODELS = textwrap.dedent(
    """
    import sys
    from mlops_lite import Model, pipeline, step

    @step
    def fit(weight: float) -> float:
        return weight * 2

    @pipeline(model=Model(name="churn"))
    def training(weight: float = 1.0):
        fit(weight)

    if __name__ == "__main__":
        run = training.with_options(quiet=True)(weight=float(sys.argv[1]))
        print("RUN", run.name)
        if len(sys.argv) > 2:
            Model(name="churn", version="latest").set_stage(sys.argv[2], force=True)
    """
)


def test_runs_of_a_model_version_are_never_collected(project: Path) -> None:
    (project / "models.py").write_text(MODELS)
    (project / ".gitignore").write_text("__pycache__/\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "models")
    run_script(project, "models.py", "1.0", "production")
    run_script(project, "models.py", "2.0")
    record_runs(project, 2)  # runs of another pipeline, in no model
    result = retention.gc(keep_last=0, path=project)
    assert [row.pipeline for row in result.deleted] == ["train", "train"]
    reasons = sorted(result.kept.values())
    assert reasons == ["model churn version 1, production", "model churn version 2"]
    with pytest.raises(ProtectedRunError, match=r"model churn version 2.*as long as the version"):
        retention.delete_runs([next(iter(result.kept))], path=project)
