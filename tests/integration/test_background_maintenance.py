"""Pack merging runs beside the runs, never inside one: a slow repack stalls no run."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mlops_lite.store.maintenance import PACK_LIMIT
from tests.conftest import git

PIPELINE = textwrap.dedent(
    """
    import sys
    from mlops_lite import pipeline, step

    @step
    def make(n: int) -> int:
        return n

    @pipeline
    def numbers(n: int = 0):
        make(n)

    if __name__ == "__main__":
        first, count = int(sys.argv[1]), int(sys.argv[2])
        for n in range(first, first + count):
            numbers.with_options(quiet=True)(n=n)
        print("DONE", flush=True)
    """
)

# A `git` that, asked to repack, waits until the test lets it go: a repack as slow
# as merging gigabytes of packs.
SLOW_REPACK = textwrap.dedent(
    """\
    #!/bin/sh
    for arg in "$@"; do
        if [ "$arg" = "repack" ]; then
            touch "{flags}/started"
            i=0
            while [ ! -e "{flags}/release" ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i+1)); done
        fi
    done
    exec "{git}" "$@"
    """
)


def packs(root: Path) -> int:
    return len(list((root / ".git" / "objects" / "pack").glob("*.pack")))


def wait_for(condition: object, seconds: float = 90) -> bool:
    """A hang guard for a detached process the test has no handle on (not a speed claim)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_a_run_does_not_wait_for_the_pack_merge_it_starts(project: Path, tmp_path: Path) -> None:
    (project / "counting.py").write_text(PIPELINE)
    (project / ".gitignore").write_text("__pycache__/\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "numbers")
    quiet = {**os.environ, "MLOPS_LITE_MAINTENANCE": "off"}
    subprocess.run(
        [sys.executable, "counting.py", "0", str(PACK_LIMIT)],
        cwd=project, env=quiet, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert packs(project) > PACK_LIMIT  # nothing merged them: maintenance was off
    flags = tmp_path / "flags"
    flags.mkdir()
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    real_git = shutil.which("git")
    assert real_git is not None
    (wrapper / "git").write_text(SLOW_REPACK.format(flags=flags, git=real_git))
    (wrapper / "git").chmod(0o755)
    slow = {**os.environ, "PATH": f"{wrapper}{os.pathsep}{os.environ['PATH']}"}
    slow.pop("MLOPS_LITE_MAINTENANCE", None)
    try:
        # The hang guard: a run that waited for the repack would wait 90 s.
        done = subprocess.run(
            [sys.executable, "counting.py", "1000", "1"],
            cwd=project, env=slow, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0 and "DONE" in done.stdout, done.stderr
        assert wait_for((flags / "started").exists)  # the merge began, in another process
        assert not (flags / "release").exists()  # ... and is still waiting: the run did not
    finally:
        (flags / "release").touch()
    wait_until_maintenance_ends(project)  # it holds the lock from before its repack began
    assert packs(project) < PACK_LIMIT // 2
    git(project, "fsck", "--strict", "--no-dangling")


def wait_until_maintenance_ends(root: Path) -> None:
    """Block on the repository's maintenance lock: no clock, the release is the event."""
    with open(root / ".git" / "mlops-lite" / "repack.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_UN)
