"""Running the git command for what only it does well (status, temporary indexes, diffs)."""

from __future__ import annotations

import os
import shutil
import subprocess


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a git subprocess, with our own additions."""
    # A surrounding git (a hook, a rebase) may set these; they would redirect every command.
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_INDEX_FILE", "GIT_DIR", "GIT_WORK_TREE")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    # `git status` otherwise refreshes the user's index file opportunistically.
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env.update(extra or {})
    return env


def run_git(root: str, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> str:
    """``git <args>`` in ``root``; its stdout, or a StoreError carrying git's message."""
    from mlops_lite.errors import StoreError

    if shutil.which("git") is None:
        raise StoreError("mlops_lite needs the git command here and it is not on PATH: install git")
    completed = subprocess.run(
        ["git", *args], cwd=root, env=env or git_env(), input=stdin, capture_output=True, check=False
    )
    if completed.returncode != 0:
        raise StoreError(
            f"git {' '.join(args[:2])} failed in {root}: {completed.stderr.decode(errors='replace').strip()}"
        )
    return completed.stdout.decode("utf-8", "replace")
