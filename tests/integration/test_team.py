"""Two teammates sharing one remote: runs appear, load, and serve as cache hits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import git

PIPELINE = textwrap.dedent(
    """
    from mlops_lite import step, pipeline

    @step
    def prepare(n: int) -> list[int]:
        print("prepare executed")
        return list(range(n))

    @step
    def total(values: list[int]) -> int:
        print("total executed")
        return sum(values)

    @pipeline
    def team(n: int = 10):
        total(prepare(n))

    if __name__ == "__main__":
        run = team()
        print("RUN", run.sha, run.name)
    """
)


def as_user(name: str) -> dict[str, str]:
    email = f"{name}@example.com"
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def mlops(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mlops_lite", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def alice_shares(tmp_path: Path, script: str, source: str) -> tuple[Path, Path]:
    """A bare remote, and Alice's repository holding ``script`` pushed to it."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=main", str(remote))
    alice_dir = tmp_path / "alice"
    alice_dir.mkdir()
    git(alice_dir, "init", "-q", "-b", "main")
    (alice_dir / script).write_text(source)
    git(alice_dir, "add", script)
    git(alice_dir, "commit", "-qm", "pipeline")
    git(alice_dir, "remote", "add", "origin", str(remote))
    git(alice_dir, "push", "-q", "origin", "main")
    return remote, alice_dir


@pytest.mark.parametrize("transport", ["git", "dulwich"])
def test_teammates_runs_arrive_load_and_are_cache_hits(tmp_path: Path, transport: str) -> None:
    remote, alice_dir = alice_shares(tmp_path, "team.py", PIPELINE)
    alice, bob = as_user("alice"), as_user("bob")

    first = subprocess.run(
        [sys.executable, "team.py"],
        cwd=alice_dir,
        env=alice,
        capture_output=True,
        text=True,
        check=True,
    )
    sha = next(line.split()[1] for line in first.stdout.splitlines() if line.startswith("RUN"))
    mlops(alice_dir, alice, "push", "--transport", transport, "--quiet")

    bob_dir = tmp_path / "bob"
    git(tmp_path, "clone", "-q", str(remote), str(bob_dir))
    mlops(bob_dir, bob, "pull", "--transport", transport, "--quiet")

    listing = json.loads(mlops(bob_dir, bob, "runs", "list", "--json").stdout)
    assert [entry["sha"] for entry in listing] == [sha]
    assert listing[0]["author"]["email"] == "alice@example.com"
    shown = json.loads(mlops(bob_dir, bob, "runs", "show", sha[:10], "--json").stdout)
    assert shown["steps"]["total"]["status"] == "completed"

    second = subprocess.run(
        [sys.executable, "team.py"],
        cwd=bob_dir,
        env=bob,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "executed" not in second.stdout
    check = textwrap.dedent(
        f'''
        import json
        from mlops_lite import Client
        run = Client().get_pipeline("team").last_run
        print(json.dumps({{
            "author": run.author["email"],
            "cached": [s.cached for s in run.steps.values()],
            "from": run.steps["total"].cached_from,
            "value": run.steps["total"].output.load(),
            "teammate_value": Client().get_pipeline_run("{sha}").steps["total"].output.load(),
        }}))
        '''
    )
    result = json.loads(
        subprocess.run(
            [sys.executable, "-c", check],
            cwd=bob_dir,
            env=bob,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert result["author"] == "bob@example.com"
    assert result["cached"] == [True, True]
    assert result["from"]["run"] == listing[0]["name"]
    assert result["value"] == result["teammate_value"] == 45

    # Bob's run travels back to Alice; both runs are listed on both sides.
    mlops(bob_dir, bob, "push", "--transport", transport, "--quiet")
    mlops(alice_dir, alice, "pull", "--transport", transport, "--quiet")
    alice_listing = json.loads(mlops(alice_dir, alice, "runs", "list", "--json").stdout)
    assert sorted(entry["author"]["email"] for entry in alice_listing) == [
        "alice@example.com",
        "bob@example.com",
    ]
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=remote, check=True)


PICKLED = textwrap.dedent(
    """
    from mlops_lite import step, pipeline

    class Model:
        def __init__(self, weight):
            self.weight = weight

    @step
    def fit() -> Model:
        print("fit executed")
        return Model(3)

    @pipeline
    def modelling():
        fit()

    if __name__ == "__main__":
        print("RUN", modelling().sha)
    """
)


def test_a_teammates_pickle_is_neither_loaded_nor_reused_until_trusted(tmp_path: Path) -> None:
    remote, alice_dir = alice_shares(tmp_path, "modelling.py", PICKLED)
    bob_dir = tmp_path / "bob"
    alice, bob = as_user("alice"), as_user("bob")
    subprocess.run(
        [sys.executable, "modelling.py"], cwd=alice_dir, env=alice, check=True, capture_output=True
    )
    mlops(alice_dir, alice, "push", "--quiet")
    git(tmp_path, "clone", "-q", str(remote), str(bob_dir))
    mlops(bob_dir, bob, "pull", "--quiet")

    load = (
        "from mlops_lite import Client\n"
        "run = Client().list_pipeline_runs(pipeline='modelling')[-1]\n"
        "print(run.steps['fit'].output.load().weight)\n"
    )
    refused = subprocess.run(
        [sys.executable, "-c", load], cwd=bob_dir, env=bob, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "UntrustedPickleError" in refused.stderr
    assert "MLOPS_LITE_TRUST_PICKLE=1" in refused.stderr and "allowed_signers" in refused.stderr

    # Untrusted, Alice's pickle is not reused: Bob's run executes the step itself.
    rerun = subprocess.run(
        [sys.executable, "modelling.py"],
        cwd=bob_dir,
        env=bob,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "fit executed" in rerun.stdout

    trusting = {**bob, "MLOPS_LITE_TRUST_PICKLE": "1"}
    loaded = subprocess.run(
        [sys.executable, "-c", load],
        cwd=bob_dir,
        env=trusting,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "3"
