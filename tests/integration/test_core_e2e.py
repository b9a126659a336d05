"""End to end: pipeline scripts run in subprocesses, results read from another process.

The repository is checked with the real git CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlops_lite import Client
from mlops_lite.errors import RunNotFoundError, StepFailedError, UnknownSchemaVersionError
from tests.conftest import CRASHY, git, run_script

TRAINING = textwrap.dedent(
    """
    import logging
    import sys
    from typing import Annotated
    from mlops_lite import step, pipeline, log_metadata, get_step_context
    import helpers

    @step
    def load(n: int = 5) -> list[int]:
        print("loading", n)
        logging.getLogger("demo").info("info from load")
        return list(range(n))

    @step
    def split(
        data: list[int],
    ) -> tuple[Annotated[list[int], "train"], Annotated[list[int], "test"]]:
        print("to stderr", file=sys.stderr)
        return data[:-1], data[-1:]

    @step
    def train(train: list[int], lr: float) -> Annotated[dict, "model"]:
        log_metadata({"loss": 0.5})
        return {"w": helpers.scale(sum(train), lr), "step": get_step_context().step_name}

    @pipeline
    def training(lr: float = 0.1, n: int = 5):
        log_metadata({"purpose": "test"})
        data = load(n=n)
        tr, te = split(data)
        train(tr, lr=lr)

    if __name__ == "__main__":
        lr = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
        run = training(lr=lr)
        print("RUN", run.sha, run.name)
    """
)

HELPERS = "def scale(value, factor):\n    return value * factor\n"


def write_project(root: Path, *, commit: bool = True) -> None:
    (root / "train.py").write_text(TRAINING)
    (root / "helpers.py").write_text(HELPERS)
    (root / ".gitignore").write_text("__pycache__/\n")
    if commit:
        git(root, "add", ".")
        git(root, "commit", "-q", "-m", "pipeline")


def run_id(completed: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RUN "))
    _, sha, name = line.split()
    return sha, name


def read_in_other_process(root: Path, code: str) -> object:
    script = "import json\nfrom mlops_lite import Client\nclient = Client()\n" + textwrap.dedent(
        code
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_run_is_recorded_and_read_back_from_another_process(project: Path) -> None:
    write_project(project)
    head = git(project, "rev-parse", "HEAD")
    index_before = (project / ".git" / "index").read_bytes()
    sha, name = run_id(run_script(project, "train.py"))

    result = read_in_other_process(
        project,
        """
        run = client.get_pipeline("training").last_run
        steps = run.steps
        print(json.dumps({
            "sha": run.sha, "name": run.name, "status": run.status, "code": run.code_commit,
            "params": run.parameters, "model": steps["train"].outputs["model"].load(),
            "load": steps["load"].output.load(), "cached": steps["train"].cached,
            "train_status": steps["train"].status, "logs": steps["load"].logs,
            "split_logs": steps["split"].logs, "metadata": steps["train"].metadata,
            "run_metadata": run.metadata, "inputs": sorted(steps["train"].inputs),
            "order": list(steps), "python": run.environment["python"],
            "has_packages": "msgpack" in run.environment["packages"],
        }))
    """,
    )
    assert result["sha"] == sha and result["name"] == name
    assert result["status"] == "completed"
    assert result["code"] == head
    assert result["params"] == {"lr": 0.5, "n": 5}
    assert result["model"] == {"w": 3.0, "step": "train"}
    assert result["load"] == [0, 1, 2, 3, 4]
    assert result["cached"] is False and result["train_status"] == "completed"
    assert "loading 5" in result["logs"] and "info from load" in result["logs"]
    assert "to stderr" in result["split_logs"]
    assert result["metadata"] == {"loss": 0.5}
    assert result["run_metadata"] == {"purpose": "test"}
    assert result["inputs"] == ["train"]
    assert result["order"] == ["load", "split", "train"]
    assert result["python"].count(".") == 2 and result["has_packages"]

    # The user's repository is untouched, and git agrees the objects are sound.
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "rev-parse", "HEAD") == head
    assert (project / ".git" / "index").read_bytes() == index_before
    assert git(project, "branch", "--list") == "* main"
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)
    assert git(project, "rev-parse", f"refs/mlops/runs/training/{name}") == sha
    assert git(project, "rev-parse", f"{sha}^1") == head


def test_console_still_shows_step_output(project: Path) -> None:
    write_project(project)
    completed = run_script(project, "train.py")
    assert "loading 5" in completed.stdout
    assert "to stderr" in completed.stderr


def test_second_identical_run_executes_nothing(project: Path) -> None:
    write_project(project)
    first_sha, first_name = run_id(run_script(project, "train.py"))
    second = run_script(project, "train.py")
    assert "loading" not in second.stdout
    sha, _ = run_id(second)
    with Client() as client:
        run = client.get_pipeline_run(sha)
        assert all(step.cached for step in run.steps.values())
        assert run.steps["train"].cached_from == {
            "pipeline": "training",
            "run": first_name,
            "step": "train",
        }
        assert (
            run.steps["train"].outputs["model"].id
            == client.get_pipeline_run(first_sha).steps["train"].outputs["model"].id
        )


def test_changing_a_parameter_reruns_only_what_depends_on_it(project: Path) -> None:
    write_project(project)
    run_script(project, "train.py", "0.5")
    sha, _ = run_id(run_script(project, "train.py", "0.25"))
    with Client() as client:
        steps = client.get_pipeline_run(sha).steps
        assert [steps[n].cached for n in ("load", "split", "train")] == [True, True, False]
        assert steps["train"].output.load()["w"] == 1.5


def test_editing_a_helper_invalidates_the_step_that_calls_it(project: Path) -> None:
    write_project(project)
    run_script(project, "train.py")
    (project / "helpers.py").write_text(
        "def scale(value, factor):\n    return value * factor * 2\n"
    )
    git(project, "commit", "-qam", "change helper")
    sha, _ = run_id(run_script(project, "train.py"))
    with Client() as client:
        steps = client.get_pipeline_run(sha).steps
        assert [steps[n].cached for n in ("load", "split", "train")] == [True, True, False]
        assert steps["train"].output.load()["w"] == 6.0


def test_unrelated_code_change_keeps_the_cache(project: Path) -> None:
    write_project(project)
    run_script(project, "train.py")
    with (project / "helpers.py").open("a") as f:
        f.write("\ndef unrelated():\n    return 42\n")
    (project / "other.py").write_text("X = 1\n")
    sha, _ = run_id(run_script(project, "train.py"))
    with Client() as client:
        assert all(step.cached for step in client.get_pipeline_run(sha).steps.values())


def test_dirty_tree_run_pins_snapshot_with_head_parent(project: Path) -> None:
    write_project(project)
    head = git(project, "rev-parse", "HEAD")
    (project / "helpers.py").write_text(HELPERS + "# edited\n")
    (project / "untracked.txt").write_text("new file\n")
    status_before = git(project, "status", "--porcelain")
    index_before = (project / ".git" / "index").read_bytes()
    sha, _ = run_id(run_script(project, "train.py"))
    assert git(project, "status", "--porcelain") == status_before
    assert (project / ".git" / "index").read_bytes() == index_before
    snapshot = git(project, "rev-parse", f"{sha}^1")
    assert snapshot != head
    assert git(project, "rev-parse", f"{snapshot}^1") == head
    assert git(project, "show", f"{snapshot}:untracked.txt") == "new file"
    assert "# edited" in git(project, "show", f"{snapshot}:helpers.py")
    with Client() as client:
        code = client.get_pipeline_run(sha).code
    assert code["dirty"] is True and code["base_commit"] == head and code["commit"] == snapshot
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)


def test_repository_without_any_commit_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    write_project(root, commit=False)
    sha, _ = run_id(run_script(root, "train.py"))
    snapshot = git(root, "rev-parse", f"{sha}^1")
    assert git(root, "show", f"{snapshot}:helpers.py") == HELPERS.strip()
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root).returncode != 0


def test_outside_a_git_repository_the_error_says_git_init(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAINING)
    (tmp_path / "helpers.py").write_text(HELPERS)
    completed = run_script(tmp_path, "train.py", check=False)
    assert completed.returncode != 0
    assert "git init" in completed.stderr and "ProjectNotFoundError" in completed.stderr


FAILING = textwrap.dedent(
    """
    import os, sys
    from mlops_lite import step, pipeline

    @step
    def first() -> int:
        print("first ran")
        return 1

    @step
    def flaky(x: int) -> int:
        if os.environ.get("FAIL") == "1":
            raise ValueError("boom from flaky")
        return x + 1

    @step
    def after(x: int) -> int:
        return x * 10

    @step
    def independent() -> str:
        return "done"

    @pipeline
    def fragile():
        after(flaky(first()))
        independent()

    if __name__ == "__main__":
        try:
            run = fragile()
            print("RUN", run.sha, run.name)
        except Exception as error:
            cause = type(error.__cause__).__name__
            print("ERROR", type(error).__name__, error.step_name, error.run_name, cause)
            sys.exit(3)
    """
)


def test_failed_step_is_recorded_and_the_next_run_resumes(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "fragile.py").write_text(FAILING)
    monkeypatch.setenv("FAIL", "1")
    failed = run_script(project, "fragile.py", check=False)
    assert failed.returncode == 3
    assert "ERROR StepFailedError flaky" in failed.stdout and "ValueError" in failed.stdout
    run_name = failed.stdout.split("ERROR StepFailedError flaky ")[1].split()[0]
    with Client() as client:
        run = client.get_pipeline_run(run_name)
        assert run.status == "failed"
        assert run.steps["first"].status == "completed"
        assert run.steps["flaky"].status == "failed"
        assert "boom from flaky" in (run.steps["flaky"].error or "")
        assert run.steps["after"].status == "skipped"
        assert run.steps["independent"].status == "completed"
    monkeypatch.setenv("FAIL", "0")
    resumed = run_script(project, "fragile.py")
    assert "first ran" not in resumed.stdout
    sha, _ = run_id(resumed)
    with Client() as client:
        steps = client.get_pipeline_run(sha).steps
        assert steps["first"].cached and not steps["flaky"].cached
        assert steps["after"].output.load() == 20


def test_failing_step_raises_step_failed_error_in_process(project: Path) -> None:
    from mlops_lite import pipeline, step

    @step
    def broken() -> int:
        raise RuntimeError("nope")

    @pipeline
    def p() -> None:
        broken()

    with pytest.raises(StepFailedError, match="step 'broken'") as info:
        p()
    assert isinstance(info.value.__cause__, RuntimeError)


def test_enable_cache_false_per_step_and_per_run(project: Path) -> None:
    from mlops_lite import pipeline, step

    calls: list[str] = []

    @step
    def a() -> int:
        calls.append("a")
        return 1

    @step(enable_cache=False)
    def b(x: int) -> int:
        calls.append("b")
        return x + 1

    @pipeline
    def p() -> None:
        b(a())

    p()
    p()
    assert calls == ["a", "b", "b"]
    p.with_options(enable_cache=False)()
    assert calls == ["a", "b", "b", "a", "b"]


def test_cache_hits_work_across_pipelines(project: Path) -> None:
    from mlops_lite import pipeline, step

    calls: list[int] = []

    @step
    def expensive(n: int) -> int:
        calls.append(n)
        return n * n

    @pipeline
    def one() -> None:
        expensive(7)

    @pipeline
    def two() -> None:
        expensive(7)

    one()
    run = two()
    assert calls == [7]
    assert run.steps["expensive"].cached_from["pipeline"] == "one"


def test_cache_hit_with_missing_object_falls_back_to_running(project: Path) -> None:
    from mlops_lite import pipeline, step
    from mlops_lite.core.records import RunRecord
    from mlops_lite.store import GitStore
    from mlops_lite.store.layout import RUN_RECORD, build_run_commit, read_run_commit

    calls: list[int] = []

    @step
    def produce() -> int:
        calls.append(1)
        return 123456

    @pipeline
    def p() -> None:
        produce()

    first = p()
    # The only earlier execution now names an artifact that is not in the repository:
    # the run is recorded again with its output pointing at nothing.
    with GitStore.open() as store:
        recorded = read_run_commit(store.read_object, first.sha)
        record = RunRecord.decode(store.read_object(recorded.entries[RUN_RECORD][1]))
        record.step_summary["produce"].outputs["output"].artifact_id = "ab" * 20  # type: ignore[assignment]
        forged, objects = build_run_commit(
            store.identity, record, recorded.steps, recorded.code_commit
        )
        store.write_objects(objects).release()
        store.refs.compare_and_swap(first.ref, first.sha, forged.id)
    run = p()
    assert calls == [1, 1]
    assert run.steps["produce"].output.load() == 123456


def test_a_process_running_again_decodes_the_run_it_reuses_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook or a sweep runs the same pipeline many times: the reused run is read once."""
    from mlops_lite import pipeline, step
    from mlops_lite.execution import cache
    from mlops_lite.store.layout import read_run_commit

    reads: list[str] = []

    def counting(read_object: object, sha: str, **options: bool) -> object:
        reads.append(sha)
        return read_run_commit(read_object, sha, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(cache, "read_run_commit", counting)
    monkeypatch.setattr(cache, "_runs_read", type(cache._runs_read)())  # none from other tests

    @step
    def produce() -> int:
        return 7

    @pipeline
    def p() -> None:
        produce()

    first = p()
    runs = [p() for _ in range(3)]
    assert all(run.steps["produce"].cached for run in runs)
    assert reads == [first.sha]


def test_same_values_share_one_artifact_object(project: Path) -> None:
    from mlops_lite import pipeline, step

    @step
    def make(seed: int) -> list[int]:
        return [1, 2, 3]

    @pipeline
    def p() -> None:
        make(1)
        make(2)

    run = p()
    assert run.steps["make"].output.id == run.steps["make_2"].output.id


def test_kill_9_loses_no_finished_step_and_shows_crashed(project: Path) -> None:
    (project / "crashy.py").write_text(CRASHY)
    env = {**os.environ, "DIE": "1"}
    killed = subprocess.run(
        [sys.executable, "crashy.py"], cwd=project, env=env, capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL
    with Client() as client:
        [run] = client.list_pipeline_runs(pipeline="crashy")
        assert run.status == "crashed"
    second = run_script(project, "crashy.py")
    assert "quick ran" not in second.stdout
    with Client() as client:
        runs = client.list_pipeline_runs(pipeline="crashy")
        assert [r.status for r in runs] == ["completed", "crashed"]
        assert runs[0].steps["quick"].cached
        crashed = runs[1]
        assert crashed.steps["quick"].status == "completed" and "dies" not in crashed.steps
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)


def test_concurrent_runs_in_one_repository_lose_nothing(project: Path) -> None:
    write_project(project)
    processes = [
        subprocess.Popen(
            [sys.executable, "train.py", str(0.1 * (i + 1))],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    failures = [err for p, (_, err) in zip(processes, outputs, strict=True) if p.returncode != 0]
    assert not failures, "\n".join(failures)
    with Client() as client:
        runs = client.list_pipeline_runs(pipeline="training")
        assert len(runs) == 8
        assert all(run.status == "completed" for run in runs)
        assert sorted(run.parameters["lr"] for run in runs) == pytest.approx(
            [0.1 * (i + 1) for i in range(8)]
        )
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)


def test_listing_filters_and_lookup_by_prefix(project: Path) -> None:
    write_project(project)
    shas = [run_id(run_script(project, "train.py", str(lr)))[0] for lr in (0.1, 0.2)]
    with Client() as client:
        runs = client.list_pipeline_runs()
        assert [r.sha for r in runs] == shas[::-1]
        assert [r.sha for r in client.list_pipeline_runs(limit=1)] == [shas[1]]
        assert client.list_pipeline_runs(status="failed") == []
        assert client.get_pipeline_run(shas[0][:8]).sha == shas[0]
        assert client.get_pipeline_run(shas[0][:8]).sha == shas[0]  # ZenML's name
        assert [r.sha for r in client.list_pipeline_runs(limit=1)] == [shas[1]]
        assert [p.name for p in client.list_pipelines()] == ["training"]
        assert client.get_pipeline("training").last_run.sha == shas[1]
        with pytest.raises(RunNotFoundError):
            client.get_pipeline_run("does-not-exist")


def test_index_is_rebuilt_when_deleted_or_corrupt(project: Path) -> None:
    write_project(project)
    sha, _ = run_id(run_script(project, "train.py"))
    index = project / ".git" / "mlops-lite" / "index.sqlite3"
    index.unlink()
    with Client() as client:
        assert client.get_pipeline_run(sha).status == "completed"
    index.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    with Client() as client:
        assert [r.sha for r in client.list_pipeline_runs()] == [sha]


def test_a_cp_a_copy_lists_each_run_once_and_a_moved_one_what_exists(
    project: Path, tmp_path: Path
) -> None:
    # The index once stored paths of ref files: a `cp -a` copy (same stamps, same
    # index) listed the original's runs as well as its own, each twice.
    write_project(project)
    first, _ = run_id(run_script(project, "train.py"))
    with Client() as client:  # the index notes the ref directories as they are
        assert [r.sha for r in client.list_pipeline_runs()] == [first]
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(project), str(copy)], check=True)
    second, _ = run_id(run_script(project, "train.py"))  # the original moves on
    third, _ = run_id(run_script(copy, "train.py"))
    with Client(copy) as client:
        assert sorted(r.sha for r in client.list_pipeline_runs()) == sorted([first, third])
        assert client.get_pipeline_run(first[:10]).sha == first  # one match, not two
    git(project, "update-ref", "-d", next(iter(_run_refs(project, second))))
    moved = tmp_path / "moved"
    os.rename(project, moved)
    with Client(moved) as client:
        assert [r.sha for r in client.list_pipeline_runs()] == [first]


def _run_refs(root: Path, sha: str) -> list[str]:
    listed = git(root, "for-each-ref", "--format=%(objectname) %(refname)", "refs/mlops/runs/")
    return [line.split()[1] for line in listed.splitlines() if line.startswith(sha)]


def test_an_index_of_an_older_version_is_rebuilt(project: Path) -> None:
    import sqlite3

    write_project(project)
    sha, _ = run_id(run_script(project, "train.py"))
    index = project / ".git" / "mlops-lite" / "index.sqlite3"
    with Client() as client:
        assert [r.sha for r in client.list_pipeline_runs()] == [sha]
    db = sqlite3.connect(index)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Client() as client:
        assert [r.sha for r in client.list_pipeline_runs()] == [sha]


def test_runs_fetched_by_plain_git_appear_without_rescanning(project: Path, tmp_path: Path) -> None:
    write_project(project)
    sha, _ = run_id(run_script(project, "train.py"))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    with Client(clone) as client:
        assert client.list_pipeline_runs() == []
    git(clone, "fetch", "-q", "origin", "refs/mlops/*:refs/mlops/*")
    with Client(clone) as client:
        run = client.get_pipeline_run(sha)
        assert run.steps["train"].outputs["model"].load()["step"] == "train"


def test_unknown_schema_version_is_a_clear_error(project: Path) -> None:
    from mlops_lite.core.records import RunRecord, pack_value

    data = pack_value({"schema": 99, "kind": "run", "data": {}})
    with pytest.raises(UnknownSchemaVersionError, match=r"schema 99.*upgrade"):
        RunRecord.decode(data)


def test_thousands_of_runs_keep_the_pack_count_bounded(project: Path) -> None:
    from mlops_lite import pipeline, step
    from mlops_lite.store.background import wait_for_maintenance

    @step
    def one(x: int) -> int:
        return x

    @pipeline
    def many(x: int = 0) -> None:
        one(x)

    for i in range(120):
        many(x=i)
    # Packs are merged by a process of their own. Runs that ended while a merge was at
    # work left theirs to the next run: once the merges end, one more run finds the
    # lock free and merges what is left.
    wait_for_maintenance()
    many(x=0)
    wait_for_maintenance()
    assert len(list((project / ".git" / "objects" / "pack").glob("*.idx"))) <= 60
    loose = [p for p in (project / ".git" / "objects").glob("??/*")]
    assert len(loose) <= 400


def test_run_with_a_newer_schema_is_listed_and_explained(project: Path) -> None:
    from mlops_lite.core.records import pack_value
    from mlops_lite.store import GitStore
    from mlops_lite.store import objects as o

    record = o.blob(pack_value({"schema": 99, "kind": "run", "data": {}}))
    tree = o.tree({"run.msgpack": (o.MODE_BLOB, record.id)})
    head = git(project, "rev-parse", "HEAD")
    commit = o.commit(
        tree_id=tree.id,
        parents=[head],
        author=o.Identity("Future", "f@example.com"),
        timestamp=time.time(),
        tz_offset_minutes=0,
        message="future run",
    )
    store = GitStore.open()
    store.write_objects([record, tree, commit])
    store.refs.compare_and_swap(
        "refs/mlops/runs/future/20991231-000000-000000-abcd", None, commit.id
    )
    store.close()
    with Client() as client:
        [run] = client.list_pipeline_runs()
        assert run.status == "unreadable" and run.pipeline_name == "future"
        with pytest.raises(UnknownSchemaVersionError, match="schema 99"):
            client.get_pipeline_run(commit.id[:10]).record


def test_numpy_metadata_is_recorded_as_numbers(project: Path) -> None:
    np = pytest.importorskip("numpy")
    from mlops_lite import log_metadata, pipeline, step

    @step
    def score() -> int:
        log_metadata({"accuracy": np.float64(0.75), "n": np.int64(3)})
        return 1

    @pipeline
    def p() -> None:
        score()

    assert p().steps["score"].metadata == {"accuracy": 0.75, "n": 3}


def test_cache_switch_in_the_environment_overrides_steps_own_setting(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_lite import pipeline, step

    calls: list[int] = []

    @step(enable_cache=True)
    def insists() -> int:
        calls.append(1)
        return 1

    @pipeline
    def p() -> None:
        insists()

    p()
    p()
    assert calls == [1]
    monkeypatch.setenv("MLOPS_LITE_ENABLE_CACHE", "0")
    run = p()
    assert calls == [1, 1] and not run.steps["insists"].cached


def test_runs_from_a_linked_worktree_share_the_repository(project: Path, tmp_path: Path) -> None:
    write_project(project)
    worktree = tmp_path / "feature"
    git(project, "worktree", "add", "-q", "-b", "feature", str(worktree))
    status_before = git(worktree, "status", "--porcelain")
    sha, _ = run_id(run_script(worktree, "train.py"))
    assert git(worktree, "status", "--porcelain") == status_before
    assert git(project, "rev-parse", f"{sha}^1") == git(worktree, "rev-parse", "HEAD")
    with Client(project) as client:
        assert client.get_pipeline_run(sha).steps["train"].output.load()["step"] == "train"
    # A second run from the main checkout reuses the worktree's results.
    second, _ = run_id(run_script(project, "train.py"))
    with Client(project) as client:
        assert all(step.cached for step in client.get_pipeline_run(second).steps.values())


def test_a_script_run_and_an_import_of_it_share_the_cache(project: Path) -> None:
    write_project(project)
    run_script(project, "train.py")
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import train; run = train.training(lr=0.5); print('RUN', run.sha, run.name)",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    sha, _ = run_id(imported)
    with Client() as client:
        assert all(step.cached for step in client.get_pipeline_run(sha).steps.values())


@pytest.mark.parametrize(
    ("host", "expected"), [("a-teammates-laptop", "running"), (None, "crashed")]
)
def test_a_running_run_from_elsewhere_is_not_called_crashed(
    project: Path, host: str | None, expected: str
) -> None:
    import socket

    from mlops_lite.core.records import RunRecord
    from mlops_lite.store import GitStore
    from mlops_lite.store.layout import build_run_commit, run_ref

    record = RunRecord(
        run_name="20261123-000000-000000-abcd",
        pipeline_name="remote",
        status="running",
        start_time=time.time(),
        environment={"host": host or socket.gethostname()},
    )
    store = GitStore.open()
    commit, objects = build_run_commit(
        store.identity, record, {}, git(project, "rev-parse", "HEAD")
    )
    store.write_objects(objects)
    store.refs.compare_and_swap(run_ref("remote", record.run_name), None, commit.id)
    store.close()
    with Client() as client:
        assert client.get_pipeline_run(record.run_name).status == expected


def test_a_value_nothing_can_save_fails_the_step_naming_output_and_type(project: Path) -> None:
    import threading

    from mlops_lite import pipeline, step
    from mlops_lite.errors import NoMaterializerError

    @step
    def make_lock() -> object:
        return threading.Lock()

    @pipeline
    def locking() -> None:
        make_lock()

    with pytest.raises(StepFailedError, match="make_lock") as info:
        locking()
    cause = info.value.__cause__
    assert isinstance(cause, NoMaterializerError)
    message = str(cause)
    assert "make_lock" in message and "output" in message and "lock" in message.lower()
    assert "register_materializer" in message
    with Client() as client:
        [run] = client.list_pipeline_runs(pipeline="locking")
        assert run.status == "failed" and "NoMaterializerError" in (
            run.steps["make_lock"].error or ""
        )


def test_wrong_number_of_returned_values_names_the_step(project: Path) -> None:
    from typing import Annotated

    from mlops_lite import pipeline, step

    @step
    def pair() -> tuple[Annotated[int, "a"], Annotated[int, "b"]]:
        return (1, 2, 3)  # type: ignore[return-value]

    @pipeline
    def pairs() -> None:
        pair()

    with pytest.raises(StepFailedError, match="pair") as info:
        pairs()
    assert "declares 2 outputs ['a', 'b'] but returned a tuple of 3" in str(info.value.__cause__)


def test_listing_follows_pack_refs_deleted_refs_and_new_runs(project: Path) -> None:
    from mlops_lite import pipeline, step

    @step
    def value(x: int) -> int:
        return x

    @pipeline
    def listed(x: int = 0) -> None:
        value(x)

    first, second = listed(x=1), listed(x=2)
    with Client() as client:
        assert {r.sha for r in client.list_pipeline_runs()} == {first.sha, second.sha}
    git(project, "pack-refs", "--all")
    third = listed(x=3)
    with Client() as client:
        assert {r.sha for r in client.list_pipeline_runs()} == {first.sha, second.sha, third.sha}
    git(project, "update-ref", "-d", f"refs/mlops/runs/listed/{first.name}")
    git(project, "update-ref", "-d", f"refs/mlops/runs/listed/{third.name}")
    with Client() as client:
        assert [r.sha for r in client.list_pipeline_runs()] == [second.sha]


def test_rebuilding_the_index_of_many_runs_reads_them_in_bulk(project: Path) -> None:
    from mlops_lite import pipeline, step
    from mlops_lite.store.git import cat_objects

    calls: list[int] = []

    @step
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    @pipeline
    def squares(x: int = 0) -> None:
        square(x)

    shas = {squares(x=i).sha for i in range(130)}
    (project / ".git" / "mlops-lite" / "index.sqlite3").unlink()
    with Client() as client:
        runs = client.list_pipeline_runs()
        assert {r.sha for r in runs} == shas and {r.status for r in runs} == {"completed"}
    calls.clear()
    assert squares(x=7).steps["square"].cached and calls == []
    # The bulk reader leaves out what does not exist instead of failing.
    some = sorted(shas)[:3]
    assert set(cat_objects(str(project), [*some, "0" * 40])) == set(some)


def test_a_secret_on_the_command_line_is_not_written_to_git(project: Path) -> None:
    (project / "secretive.py").write_text(
        textwrap.dedent(
            """
        import argparse
        from mlops_lite import step, pipeline

        @step
        def use(n: int) -> int:
            return n

        @pipeline
        def secretive(n: int = 1):
            use(n)

        if __name__ == "__main__":
            parser = argparse.ArgumentParser()
            parser.add_argument("--api-key")
            parser.parse_args()
            print("RUN", secretive().sha, "x")
        """
        )
    )
    run_script(project, "secretive.py", "--api-key", "sk-very-secret-123")
    blobs = [
        line.split()[0]
        for line in git(project, "rev-list", "--objects", "--all", "--reflog").splitlines()
    ]
    contents = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=project,
        input=("\n".join(blobs) + "\n").encode(),
        capture_output=True,
        check=True,
    ).stdout
    assert b"sk-very-secret-123" not in contents
    assert b"<redacted>" in contents


def test_runs_set_git_config_once_and_git_gc_leaves_no_loose_objects(project: Path) -> None:
    # Each run leaves its "running" commit unreachable once it finishes; without
    # cruft packs `git gc` writes every such object out as a loose file.
    write_project(project)
    git(project, "config", "--local", "log.excludeDecoration", "refs/heads/wip")
    for lr in ("0.1", "0.2", "0.3"):
        run_script(project, "train.py", lr)
    assert git(project, "config", "--get-all", "log.excludeDecoration").split() == [
        "refs/heads/wip",
        "refs/mlops/",
    ]
    assert git(project, "config", "gc.cruftPacks") == "true"
    assert "refs/mlops" not in git(project, "log", "-1", "--decorate=full", "--all")
    git(project, "gc", "--quiet")
    counts = dict(line.split(": ") for line in git(project, "count-objects", "-v").splitlines())
    assert counts["count"] == "0", counts
    git(project, "fsck", "--strict", "--no-dangling")


def test_a_git_config_the_user_set_is_left_alone(project: Path) -> None:
    write_project(project)
    git(project, "config", "--local", "gc.cruftPacks", "false")
    run_script(project, "train.py")
    run_script(project, "train.py", "0.2")
    assert git(project, "config", "--get-all", "gc.cruftPacks") == "false"


def test_git_gc_prune_now_loses_nothing_a_run_needs(project: Path) -> None:
    write_project(project)
    (project / "helpers.py").write_text(HELPERS + "# uncommitted edit\n")
    sha, name = run_id(run_script(project, "train.py"))
    subprocess.run(["git", "gc", "--prune=now", "--quiet"], cwd=project, check=True)
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)
    with Client() as client:
        run = client.get_pipeline_run(name)
        assert run.sha == sha and run.code["dirty"]
        assert run.steps["train"].outputs["model"].load() == {"w": 3.0, "step": "train"}
        # The dirty-tree snapshot the run is pinned to survives too.
        assert "# uncommitted edit" in git(project, "show", f"{run.code_commit}:helpers.py")
