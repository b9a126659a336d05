"""Runs survive git's own maintenance and each other: gc, repack and pack-refs beside writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tests.conftest import git

STRESS = textwrap.dedent(
    """
    import sys
    from mlops_lite import step, pipeline

    @step
    def make(seed: int) -> list[int]:
        return list(range(seed, seed + 50))

    @step
    def double(xs: list[int]) -> list[int]:
        return [2 * x for x in xs]

    @step
    def total(xs: list[int]) -> int:
        return sum(xs)

    @pipeline
    def stress(seed: int = 0):
        total(double(make(seed)))

    if __name__ == "__main__":
        writer, runs = int(sys.argv[1]), int(sys.argv[2])
        for i in range(runs):
            # Half new work, half cache hits on what the other writers recorded.
            seed = writer * 1000 + i if i % 2 else i % 3
            try:
                run = stress(seed=seed)
                print("COMPLETED", run.sha, flush=True)
            except Exception as error:
                print("FAILED", type(error).__name__, str(error).replace("\\n", " "), flush=True)
    """
)

LOAD_ALL = textwrap.dedent(
    """
    import sys
    from mlops_lite import Client

    with Client() as client:
        for sha in sys.argv[1:]:
            run = client.get_pipeline_run(sha)
            assert run.status == "completed", (sha, run.status)
            for step in run.steps.values():
                for artifact in step.outputs.values():
                    artifact.load()
    print("LOADED", len(sys.argv) - 1)
    """
)

MAINTENANCE = (
    ("gc", "--prune=now", "--quiet"),
    ("repack", "-a", "-d", "-q"),
    ("pack-refs", "--all"),
    # What mlops_lite's own pack merging runs (store/maintenance.py).
    ("repack", "--geometric=2", "-d", "-q", "--no-write-bitmap-index"),
)


def run_stress(root: Path, writers: int, runs: int) -> list[str]:
    """Run ``writers`` pipeline scripts at once while git maintains the repository.

    Returns the shas of the runs that completed; fails on any failed run, any
    maintenance command that found a broken ref, and any run that does not load.
    """
    (root / "stress.py").write_text(STRESS)
    (root / "load_all.py").write_text(LOAD_ALL)
    (root / ".gitignore").write_text("__pycache__/\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "stress")
    processes = [
        subprocess.Popen(
            [sys.executable, "stress.py", str(writer), str(runs)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in range(writers)
    ]
    stop = threading.Event()
    maintenance: list[tuple[tuple[str, ...], int, str]] = []

    def maintain() -> None:
        turn = 0
        while not stop.is_set():
            command = MAINTENANCE[turn % len(MAINTENANCE)]
            turn += 1
            done = subprocess.run(["git", *command], cwd=root, capture_output=True, text=True)
            maintenance.append((command, done.returncode, done.stderr.strip()))

    thread = threading.Thread(target=maintain)
    thread.start()
    try:
        outputs = [process.communicate(timeout=600) for process in processes]
    finally:
        stop.set()
        thread.join()
    completed, failed = [], []
    for process, (out, err) in zip(processes, outputs, strict=True):
        for line in out.splitlines():
            if line.startswith("COMPLETED "):
                completed.append(line.split()[1])
            elif line.startswith("FAILED "):
                failed.append(line)
        if process.returncode:
            failed.append(f"writer exited with {process.returncode}: {err[-2000:]}")
    assert not failed, "\n".join(failed)
    assert len(completed) == writers * runs
    # git's own races (pack-refs meeting a ref being moved: "cannot lock ref") are
    # its business; a ref pointing at an object that is gone is ours.
    broken = [m for m in maintenance if m[1] and ("bad object" in m[2] or "missing" in m[2])]
    assert not broken, broken
    # Nothing a run needs is missing right now, before any further gc. (git's
    # commit-graph is left out of this look: `git repack -a -d` drops commits
    # that became unreachable — here, finished runs' "running" commits — without
    # rewriting the commit-graph that an earlier gc wrote; plain git does the
    # same after a branch is deleted. The gc below rewrites it.)
    subprocess.run(
        ["git", "-c", "core.commitGraph=false", "fsck", "--strict", "--no-dangling"],
        cwd=root, check=True, capture_output=True,
    )  # fmt: skip
    loaded = subprocess.run(
        [sys.executable, "load_all.py", *completed], cwd=root, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
    subprocess.run(["git", "gc", "--prune=now", "--quiet"], cwd=root, check=True)
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=root, check=True)
    return completed


def test_concurrent_writers_lose_nothing_under_gc_repack_and_pack_refs(project: Path) -> None:
    run_stress(project, writers=8, runs=5)


@pytest.mark.slow
def test_many_runs_of_concurrent_writers_lose_nothing_under_maintenance(project: Path) -> None:
    # The heavier variant (the quick one already passes 50 packs, so
    # mlops_lite's own pack merging runs beside the writers in both).
    completed = run_stress(project, writers=8, runs=12)
    assert len(set(completed)) == 96


def test_a_running_run_survives_gc_prune_now_and_finishes(project: Path) -> None:
    # A run that is still recording when `git gc --prune=now` runs: its
    # "running" commit and the large step it already wrote to a pack of its own
    # (no ref reaches that pack until the run ends) must survive.
    script = textwrap.dedent(
        """
        import os, subprocess
        from mlops_lite import step, pipeline

        @step
        def first() -> bytes:
            return os.urandom(9 * 1024 * 1024)

        @step
        def second(data: bytes) -> int:
            subprocess.run(["git", "gc", "--prune=now", "--quiet"], check=True)
            subprocess.run(["git", "repack", "-a", "-d", "-q"], check=True)
            return len(data)

        @pipeline
        def during_gc():
            second(first())

        if __name__ == "__main__":
            run = during_gc()
            size = len(run.steps["first"].output.load())
            print("RUN", run.sha, size, run.steps["second"].output.load())
        """
    )
    (project / "during_gc.py").write_text(script)
    git(project, "add", "during_gc.py")
    git(project, "commit", "-q", "-m", "script")
    done = subprocess.run(
        [sys.executable, "during_gc.py"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == [str(9 * 1024 * 1024)] * 2
    subprocess.run(["git", "gc", "--prune=now", "--quiet"], cwd=project, check=True)
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)
    assert not list((project / ".git/objects/pack").glob("*.keep"))
