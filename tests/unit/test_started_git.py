"""A git command started now and waited for later (``store.git.StartedGit``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from mlops_lite.store.git import StartedGit, run_git_streaming


def test_its_result_is_what_the_command_printed_however_much(project: Path) -> None:
    # More than a pipe holds: nothing blocks while the caller does something else.
    many = "".join(f"{number:0100d}\n" for number in range(2000))
    (project / "many.txt").write_text(many)
    with StartedGit(str(project), ["hash-object", "--stdin"], stdin=many.encode()) as hashed:
        with StartedGit(str(project), ["cat-file", "--filters", "HEAD:missing"]) as failed:
            time.sleep(0.2)
            assert failed.result().code != 0
            assert "missing" in failed.result().stderr
        shown = run_git_streaming(str(project), ["show", "--no-patch", "--format=%H", "HEAD"])
        assert len(shown.stdout.strip()) == 40
        assert (
            hashed.result().stdout.strip()
            == run_git_streaming(str(project), ["hash-object", "many.txt"]).stdout.strip()
        )


def test_leaving_without_the_result_stops_the_command(project: Path) -> None:
    """A push whose tidy fails does not wait for the remote's listing it no longer needs.

    The command's own child (here an alias's shell, for a remote ssh) may hold git's
    output open after git is stopped: leaving does not wait for it to finish.
    """
    pid_file = project / "child.pid"
    alias = f"alias.wait=!echo $$ > {pid_file}; exec sleep 600"
    with StartedGit(str(project), ["-c", alias, "wait"]) as started:
        while not pid_file.exists() or not pid_file.read_text().strip():
            time.sleep(0.01)  # until git has started the child that holds its output
    child = int(pid_file.read_text())
    try:
        assert started._process.returncode == -signal.SIGKILL  # git itself was stopped
        os.kill(child, 0)  # its child still runs: nothing waited for it to end
    finally:
        os.kill(child, signal.SIGKILL)
