"""`mlops-lite rerun` end to end: real git repositories, real interpreters, real clones."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import git, run_script

from mlops_lite import Client

PIPELINE = textwrap.dedent(
    """
    import random
    import sys
    from typing import Annotated

    from mlops_lite import log_metadata, pipeline, step

    @step
    def load(n: int = 4) -> Annotated[list, "rows"]:
        return [i * i for i in range(n)]

    @step(seed=True)
    def jitter(rows: list) -> Annotated[float, "score"]:
        # Stochastic, made reproducible by seed=True.
        return sum(rows) + random.random()

    @step(enable_cache=True)
    def summary(rows: list, score: float) -> dict:
        log_metadata({"version": VERSION})
        return {"count": len(rows), "score": score, "version": VERSION}

    VERSION = 1

    @pipeline
    def training(n: int = 4) -> None:
        rows = load(n=n)
        summary(rows, jitter(rows))

    if __name__ == "__main__":
        print(training(n=int(sys.argv[1]) if len(sys.argv) > 1 else 4).sha)
    """
)


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_lite", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def last_line(completed: subprocess.CompletedProcess[str]) -> str:
    return completed.stdout.strip().splitlines()[-1]


def commit_file(root: Path, name: str, text: str, message: str) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(root, "add", name)
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def mlops_refs(root: Path) -> list[str]:
    return git(root, "for-each-ref", "--format=%(refname)", "refs/mlops/").splitlines()


def checkout_state(root: Path) -> tuple[str, str, str]:
    index = hashlib.sha256((root / ".git" / "index").read_bytes()).hexdigest()
    return (
        git(root, "status", "--porcelain", "--untracked-files=all"),
        git(root, "rev-parse", "HEAD"),
        index,
    )


def old_and_new_runs(project: Path) -> tuple[str, str, str]:
    """A run on code v1, then a code change committed and a run on v2.

    Returns (old sha, v1 commit, new sha).
    """
    v1 = commit_file(project, "train.py", PIPELINE, "pipeline v1")
    old = last_line(run_script(project, "train.py"))
    commit_file(project, "train.py", PIPELINE.replace("VERSION = 1", "VERSION = 2"), "pipeline v2")
    new = last_line(run_script(project, "train.py"))
    return old, v1, new


def test_rerun_of_old_run_reproduces_its_outputs_and_leaves_the_checkout_alone(
    project: Path,
) -> None:
    old, _, new = old_and_new_runs(project)
    with Client(project) as client:
        assert client.get_pipeline_run(old).steps["summary"].output.id != (
            client.get_pipeline_run(new).steps["summary"].output.id
        )
    (project / "notes.txt").write_text("work in progress\n")  # an untracked file stays put too
    before = checkout_state(project)

    completed = cli(project, "rerun", old)

    assert completed.returncode == 0, completed.stderr
    assert "reproduced: all 3 outputs are identical" in completed.stdout
    assert checkout_state(project) == before
    assert "VERSION = 2" in (project / "train.py").read_text()
    with Client(project) as client:
        original = client.get_pipeline_run(old)
        reproduction = next(
            run for run in client.list_pipeline_runs() if run.record.reproduces == old
        )
        assert reproduction.code_commit == original.code_commit
        assert reproduction.record.entry_point["file"] == original.record.entry_point["file"]
        assert not any(step.cached for step in reproduction.steps.values())
        for name, step in original.steps.items():
            for output, artifact in step.outputs.items():
                assert reproduction.steps[name].outputs[output].id == artifact.id
        assert reproduction.steps["summary"].output.load()["version"] == 1


def test_rerun_by_sha_prefix_and_by_code_commit(project: Path) -> None:
    old, v1, _ = old_and_new_runs(project)

    by_prefix = cli(project, "rerun", old[:8], "--json")
    by_commit = cli(project, "rerun", v1, "--json")

    for completed in (by_prefix, by_commit):
        assert completed.returncode == 0, completed.stderr
        report = json.loads(completed.stdout)
        assert report["original_sha"] == old
        assert report["identical"] is True
        assert [o["status"] for o in report["outputs"]] == ["identical"] * 3
    # The code commit now has the original run and one reproduction: the original is chosen.
    assert json.loads(by_commit.stdout)["original_sha"] == old


def test_code_commit_with_runs_of_two_pipelines_asks_which_one(project: Path) -> None:
    other = PIPELINE.replace("def training", "def evaluation").replace(
        "print(training(", "print(evaluation("
    )
    commit_file(project, "eval.py", other, "evaluation pipeline")
    commit = commit_file(project, "train.py", PIPELINE, "training pipeline")
    run_script(project, "train.py")
    run_script(project, "eval.py")

    completed = cli(project, "rerun", commit)

    assert completed.returncode == 2
    assert "evaluation" in completed.stderr and "training" in completed.stderr


def test_unknown_ref_is_a_usage_error(project: Path) -> None:
    completed = cli(project, "rerun", "no-such-run")
    assert completed.returncode == 2
    assert "no-such-run" in completed.stderr


def test_step_using_os_urandom_makes_rerun_fail_naming_step_and_output(project: Path) -> None:
    text = PIPELINE.replace(
        'return {"count": len(rows), "score": score, "version": VERSION}',
        'import os\n    return {"count": len(rows), "token": os.urandom(8).hex()}',
    ).replace("@step(enable_cache=True)", "@step")
    commit_file(project, "train.py", text, "nondeterministic summary")
    sha = last_line(run_script(project, "train.py"))

    completed = cli(project, "rerun", sha)

    assert completed.returncode == 1
    rows = {tuple(line.split()[:3]) for line in completed.stdout.splitlines()}
    assert ("summary", "output", "different") in rows
    assert ("jitter", "score", "identical") in rows
    assert "not reproduced: 1 of 3 outputs differ" in completed.stdout


def test_numeric_difference_is_reported(project: Path) -> None:
    text = PIPELINE.replace(
        "return sum(rows) + random.random()",
        "import os\n    return float(int.from_bytes(os.urandom(4), 'big'))",
    )
    commit_file(project, "train.py", text, "random score")
    sha = last_line(run_script(project, "train.py"))

    report = json.loads(cli(project, "rerun", sha, "--json").stdout)

    score = next(o for o in report["outputs"] if o["step"] == "jitter")
    assert score["status"] == "different"  # equal by chance once in 2**32 runs
    assert score["max_abs_difference"] > 0
    assert score["a_size"] == score["b_size"]


def test_run_from_a_dirty_work_tree_reproduces_from_its_snapshot(project: Path) -> None:
    commit_file(project, "train.py", PIPELINE, "pipeline v1")
    # Uncommitted: a changed tracked file and an untracked module the pipeline imports.
    (project / "helper.py").write_text("OFFSET = 100\n")
    (project / "train.py").write_text(
        PIPELINE.replace("VERSION = 1", "from helper import OFFSET\nVERSION = 7 + OFFSET")
    )
    sha = last_line(run_script(project, "train.py"))
    (project / "helper.py").write_text("OFFSET = 200\n")  # the work tree moves on
    before = checkout_state(project)

    completed = cli(project, "rerun", sha)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert checkout_state(project) == before
    with Client(project) as client:
        run = client.get_pipeline_run(sha)
        assert run.code["dirty"] is True
        assert run.steps["summary"].output.load()["version"] == 107


def test_fresh_clone_reproduces_a_run_whose_branch_was_never_pushed(
    project: Path, tmp_path: Path
) -> None:
    commit_file(project, "train.py", PIPELINE, "pipeline v1")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "-q", "origin", "main")
    git(project, "checkout", "-q", "-b", "experiment")
    commit = commit_file(
        project, "train.py", PIPELINE.replace("VERSION = 1", "VERSION = 42"), "local experiment"
    )
    sha = last_line(run_script(project, "train.py"))
    git(project, "push", "-q", "origin", "refs/mlops/*:refs/mlops/*")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/mlops/*:refs/mlops/*")
    assert "experiment" not in git(clone, "branch", "-a")
    assert "VERSION = 42" not in (clone / "train.py").read_text()

    completed = cli(clone, "rerun", sha)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    with Client(clone) as client:
        reproduction = next(
            run for run in client.list_pipeline_runs() if run.record.reproduces == sha
        )
        assert reproduction.code_commit == commit
        assert reproduction.steps["summary"].output.load()["version"] == 42


def test_pipeline_in_a_package_module_with_relative_imports_reproduces(project: Path) -> None:
    commit_file(project, "pkg/__init__.py", "", "package")
    commit_file(project, "pkg/helpers.py", "def double(x):\n    return 2 * x\n", "helpers")
    module = PIPELINE.split('if __name__ == "__main__":')[0].replace(
        "return [i * i for i in range(n)]", "return [double(i) for i in range(n)]"
    )
    commit_file(project, "pkg/pipes.py", "from .helpers import double\n" + module, "pipes")
    commit_file(
        project, "main.py", "from pkg.pipes import training\nprint(training(n=5).sha)\n", "main"
    )
    sha = last_line(run_script(project, "main.py"))
    commit_file(project, "pkg/helpers.py", "def double(x):\n    return 3 * x\n", "helpers v2")

    completed = cli(project, "rerun", sha, "--json")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    with Client(project) as client:
        assert client.get_pipeline_run(sha).record.entry_point["module"] == "pkg.pipes"
        reproduction = client.get_pipeline_run(json.loads(completed.stdout)["rerun_sha"])
        assert reproduction.steps["load"].output.load() == [0, 2, 4, 6, 8]
        assert reproduction.parameters == {"n": 5}


def test_pipeline_without_a_source_file_gives_a_clear_error(project: Path) -> None:
    # What a notebook looks like to mlops_lite: code whose file is not in the repository.
    source = PIPELINE.split('if __name__ == "__main__":')[0]
    script = (
        f"source = {source!r}\n"
        "exec(compile(source, '<notebook cell>', 'exec'))\n"
        "print(training().sha)\n"
    )
    commit_file(project, "notebook.py", script, "notebook-like")
    sha = last_line(run_script(project, "notebook.py"))
    refs = mlops_refs(project)

    completed = cli(project, "rerun", sha)

    assert completed.returncode == 1
    assert (
        "notebook" in completed.stderr and "move the pipeline into a .py file" in completed.stderr
    )
    assert mlops_refs(project) == refs


def test_environment_difference_warns_and_strict_env_fails_without_running(
    project: Path, tmp_path: Path
) -> None:
    commit_file(project, "train.py", PIPELINE, "pipeline v1")
    site = tmp_path / "site"
    (site / "fakepkg-1.0.dist-info").mkdir(parents=True)
    completed = subprocess.run(
        [sys.executable, "train.py"], cwd=project, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ['PYTHONPATH']}"},
    )  # fmt: skip
    sha = last_line(completed)

    lenient = cli(project, "rerun", sha)
    assert lenient.returncode == 0, lenient.stderr
    assert "package fakepkg: 1.0 made the run; not installed here" in lenient.stderr

    refs = mlops_refs(project)
    strict = cli(project, "rerun", sha, "--strict-env")
    assert strict.returncode == 1
    assert "--strict-env" in strict.stderr
    assert mlops_refs(project) == refs


def test_use_cache_lets_steps_reuse_outputs(project: Path) -> None:
    commit_file(project, "train.py", PIPELINE, "pipeline v1")
    sha = last_line(run_script(project, "train.py"))

    report = json.loads(cli(project, "rerun", sha, "--use-cache", "--json").stdout)

    assert report["identical"] is True
    with Client(project) as client:
        reproduction = client.get_pipeline_run(report["rerun_sha"])
        assert all(step.cached for step in reproduction.steps.values())
        assert reproduction.record.reproduces == sha


def test_diff_shows_parameters_code_outputs_and_patch(project: Path) -> None:
    old, _, new = old_and_new_runs(project)
    third = last_line(run_script(project, "train.py", "6"))

    text = cli(project, "diff", old, third, "--patch")
    data = json.loads(cli(project, "diff", old, new, "--json").stdout)
    parameters = json.loads(cli(project, "diff", new, third, "--json").stdout)["parameters"]

    assert text.returncode == 0, text.stderr
    assert "M     train.py" in text.stdout
    assert "-VERSION = 1" in text.stdout and "+VERSION = 2" in text.stdout
    assert parameters == [{"key": "n", "a": 4, "b": 6, "same": False}]
    assert data["code_files"] == [{"status": "M", "path": "train.py", "old_path": None}]
    statuses = {(o["step"], o["output"]): o["status"] for o in data["outputs"]}
    assert statuses == {
        ("load", "rows"): "identical",
        ("jitter", "score"): "identical",
        ("summary", "output"): "different",
    }
    assert data["python"]["same"] is True
    assert {"key": "summary.version", "a": 1, "b": 2, "same": False} in data["metadata"]
    assert "summary.version  1  2  *" in text.stdout


def test_rerun_that_fails_in_a_step_exits_1_and_names_the_step(project: Path) -> None:
    # Data the pipeline read from an ignored file is not in the code commit.
    commit_file(project, ".gitignore", "data.txt\n", "ignore data")
    (project / "data.txt").write_text("7\n")
    text = PIPELINE.replace(
        "return [i * i for i in range(n)]", "return [int(open('data.txt').read())] * n"
    )
    commit_file(project, "train.py", text, "read data")
    sha = last_line(run_script(project, "train.py"))

    completed = cli(project, "rerun", sha)

    assert completed.returncode == 1
    assert "rerun failed: step 'load'" in completed.stderr
    assert "FileNotFoundError" in completed.stderr or "data.txt" in completed.stderr
    rows = {tuple(line.split()[:3]) for line in completed.stdout.splitlines()}
    assert ("load", "rows", "removed") in rows
