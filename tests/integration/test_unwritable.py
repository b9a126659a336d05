"""Repositories that cannot be written: read-only ones can be read, a full disk is one line."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_lite import Client
from tests.conftest import git, run_script

PIPELINE = textwrap.dedent(
    """
    import os, sys
    from mlops_lite import step, pipeline
    from mlops_lite.errors import MlopsLiteError

    @step
    def produce(size: int) -> bytes:
        print("producing", size)
        return os.urandom(size)

    @pipeline
    def unwritable(size: int = 1000):
        produce(size)

    if __name__ == "__main__":
        try:
            run = unwritable(size=int(sys.argv[1]))
        except MlopsLiteError as error:
            print("ERROR", type(error).__name__, error)
            sys.exit(3)
        print("RUN", run.sha, run.name)
    """
)

READ = textwrap.dedent(
    """
    import sys
    from mlops_lite import Client
    with Client() as client:
        [run] = client.list_pipeline_runs()
        print("STATUS", run.status, len(run.steps["produce"].output.load()))
    """
)


def _setup(project: Path) -> str:
    (project / "unwritable.py").write_text(PIPELINE)
    (project / "read.py").write_text(READ)
    (project / ".gitignore").write_text("__pycache__/\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "pipeline")
    out = run_script(project, "unwritable.py", "1000").stdout.split()
    return out[out.index("RUN") + 2]


def _read_only(project: Path) -> Callable[[list[str]], subprocess.CompletedProcess[str]]:
    """A way to run a command with ``project`` mounted read-only (or made read-only)."""
    if os.geteuid() != 0:

        def run_without_write_permission(command: list[str]) -> subprocess.CompletedProcess[str]:
            subprocess.run(["chmod", "-R", "a-w", str(project)], check=True)
            try:
                return subprocess.run(command, cwd=project, capture_output=True, text=True)
            finally:
                subprocess.run(["chmod", "-R", "u+w", str(project)], check=True)

        return run_without_write_permission
    # Root writes through permissions: mount the project read-only in a namespace.
    unshare = shutil.which("unshare")
    probe = subprocess.run(
        [unshare or "unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    if unshare is None or probe.returncode != 0:
        pytest.skip("running as root without user namespaces: cannot make a read-only mount")
    mount = (
        f"mount --bind {project} {project} && mount -o remount,ro,bind {project} && "
        f'cd {project} && exec "$@"'
    )

    def run_on_read_only_mount(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", mount, "sh", *command],
            cwd=project, capture_output=True, text=True,
        )  # fmt: skip

    return run_on_read_only_mount


def test_a_read_only_repository_can_be_listed_and_read(project: Path) -> None:
    name = _setup(project)
    # The worst case: no index yet, so it must be built, somewhere other than here.
    shutil.rmtree(project / ".git" / "mlops-lite")
    read_only = _read_only(project)
    probe = read_only(["touch", "written"])
    assert probe.returncode != 0  # really read-only
    cli = [sys.executable, "-m", "mlops_lite"]
    listed = read_only([*cli, "runs", "list"])
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout and "completed" in listed.stdout
    shown = read_only([*cli, "runs", "show", name])
    assert shown.returncode == 0 and "produce" in shown.stdout, shown.stderr
    logs = read_only([*cli, "logs", name, "produce"])
    assert logs.returncode == 0 and "producing 1000" in logs.stdout, logs.stderr
    loaded = read_only([sys.executable, "read.py"])
    assert loaded.stdout.strip() == "STATUS completed 1000", loaded.stderr
    # Recording is refused in one line that says why.
    recorded = read_only([sys.executable, "unwritable.py", "10"])
    assert recorded.returncode == 3, recorded.stderr
    assert recorded.stdout.startswith("ERROR StoreError") and "read-only" in recorded.stdout
    assert "Traceback" not in recorded.stderr
    assert not (project / ".git" / "mlops-lite").exists()


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        # As a full disk would, writes past the limit fail (EFBIG instead of ENOSPC).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_is_a_one_line_error_and_damages_nothing_recorded(project: Path) -> None:
    name = _setup(project)
    full = subprocess.run(
        [sys.executable, "unwritable.py", str(2 * 1024 * 1024)],
        cwd=project, capture_output=True, text=True, preexec_fn=_file_size_limit(256 * 1024),
    )  # fmt: skip
    assert full.returncode == 3, full.stdout + full.stderr
    [line] = [line for line in full.stdout.splitlines() if line.startswith("ERROR")]
    assert line.startswith("ERROR StoreError cannot ") and "free some disk space" in line
    assert "Traceback" not in full.stderr
    # What was recorded before reads back; git finds nothing broken.
    with Client() as client:
        before = client.get_pipeline_run(name)
        assert before.status == "completed"
        assert len(before.steps["produce"].output.load()) == 1000
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)
    # With room again, the next run works and shows the interrupted one as it was.
    again = run_script(project, "unwritable.py", "5000")
    assert "RUN" in again.stdout
    with Client() as client:
        statuses = sorted(run.status for run in client.list_pipeline_runs())
    assert statuses in (["completed", "completed", "crashed"], ["completed", "completed", "failed"])
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)
