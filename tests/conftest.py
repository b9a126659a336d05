"""Shared fixtures: every test runs with its own HOME, git identity and working directory."""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Compile the package once, as installing it would, before any subprocess imports it.

    Hundreds of tests start Python processes that import mlops_lite from this
    checkout; in a fresh clone under ``PYTHONDONTWRITEBYTECODE`` (which some CI
    images set) each of them would compile the whole package again.
    """
    if not hasattr(config, "workerinput"):  # the xdist controller, or a run without workers
        compileall.compile_dir(REPO_ROOT / "mlops_lite", quiet=1)


@pytest.fixture(autouse=True)
def isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The developer's git config and environment must not leak into a test."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(("GIT_", "MLOPS_LITE_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test User")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test User")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    # Subprocesses (pipeline scripts) import mlops_lite from this checkout.
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # Outside any repository unless a test asks for one: a pipeline run by mistake
    # must fail, not record into the checkout the tests run from.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    # Secrets handed out by one test are not scrubbed from the next one's records.
    import mlops_lite.core.secrets

    monkeypatch.setattr(mlops_lite.core.secrets, "_forms", set())
    monkeypatch.setattr(mlops_lite.core.secrets, "_pattern", None)
    yield


def git(cwd: Path | str, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh git repository with one commit, as the working directory."""
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("project\n")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "initial")
    monkeypatch.chdir(root)
    return root


def uninstrumented_env() -> dict[str, str]:
    """The environment without coverage's variables: a subprocess that must import only its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def run_script(
    root: Path, script: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a pipeline script in a new interpreter, as a user would."""
    completed = subprocess.run(
        [sys.executable, script, *args], cwd=root, capture_output=True, text=True, timeout=120
    )
    if check and completed.returncode != 0:
        raise AssertionError(f"{script} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed


def wait_while_running(
    ready: Callable[[], bool], process: subprocess.Popen[Any], what: str
) -> None:
    """Poll ``ready`` until it holds; fail as soon as ``process`` exits without it.

    The failure is an event (the process ended), never a clock: on a busy machine
    the wait is only longer. A process that neither gets there nor ends is the
    suite's hang, cut by the scripts' own gate timeouts and CI's limit.
    """
    while not ready():
        if process.poll() is not None:
            output = process.communicate()
            raise AssertionError(f"{what}: the process ended first:\n{output}")
        time.sleep(0.05)


# A pipeline whose second step kills its own interpreter (``DIE=1``), as a
# ``kill -9`` or the OOM killer would; its first step prints when it runs.
CRASHY = """
import os, signal
from mlops_lite import step, pipeline

@step
def quick() -> int:
    print("quick ran")
    return 41

@step
def dies(x: int) -> int:
    if os.environ.get("DIE") == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 1

@pipeline
def crashy():
    dies(quick())

if __name__ == "__main__":
    run = crashy()
    print("RUN", run.sha, run.name)
"""
