"""Ref locks: a writer that died never blocks anyone; a live one is waited for, then named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_lite import Client
from mlops_lite.errors import RefConflictError
from mlops_lite.store import GitStore
from tests.conftest import CRASHY, git, run_script

REF = "refs/mlops/runs/p/20260101-000000-000000-0000"


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_lock_left_by_a_dead_writer_is_removed(project: Path) -> None:
    head = git(project, "rev-parse", "HEAD")
    lock = project / ".git" / f"{REF}.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(head + "\n")  # killed after writing, before the rename
    _age(lock, 60)
    with GitStore.open() as store:
        store.refs.compare_and_swap(REF, None, head, lock_timeout=0.5)
        assert store.refs.read(REF) == head
    assert not lock.exists()


def test_a_lock_held_by_a_live_writer_is_waited_for_then_named_with_its_fix(
    project: Path,
) -> None:
    head = git(project, "rev-parse", "HEAD")
    lock = project / ".git" / f"{REF}.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(lock)!r}, os.O_WRONLY | os.O_CREAT | os.O_EXCL)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        _age(lock, 60)  # old, but flocked: its writer is alive
        with GitStore.open() as store:
            with pytest.raises(RefConflictError, match=r"rm '.*\.lock'"):
                store.refs.compare_and_swap(REF, None, head, lock_timeout=0.3)
        assert lock.exists()
    finally:
        holder.kill()
        holder.wait()
    # Its writer is gone now: the lock is stale and goes away by itself.
    with GitStore.open() as store:
        store.refs.compare_and_swap(REF, None, head, lock_timeout=0.5)


def test_a_writer_killed_holding_its_ref_lock_blocks_no_other_pipeline(project: Path) -> None:
    (project / "crashy.py").write_text(CRASHY)
    killed = subprocess.run(
        [sys.executable, "crashy.py"], cwd=project, env={**os.environ, "DIE": "1"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    [ref_file] = (project / ".git/refs/mlops/runs/crashy").iterdir()
    # As if it had been killed while moving its ref: the lock stays behind.
    lock = ref_file.with_name(ref_file.name + ".lock")
    lock.write_text("")
    # Fresh for as long as the next run may take on a busy machine: staleness is
    # judged by the lock's age, and this run must see a fresh one.
    _age(lock, -3600)
    # The next run recovers abandoned runs first; a fresh lock (maybe a live
    # writer's) is left for later instead of holding this pipeline up.
    second = run_script(project, "crashy.py")
    assert "RUN" in second.stdout
    _age(lock, 60)
    third = run_script(project, "crashy.py")
    assert "RUN" in third.stdout
    assert not lock.exists()
    with Client() as client:
        statuses = sorted(run.status for run in client.list_pipeline_runs(pipeline="crashy"))
    assert statuses == ["completed", "completed", "crashed"]
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)
