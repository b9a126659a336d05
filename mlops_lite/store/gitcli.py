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


def cat_objects(root: str, object_ids: list[str]) -> dict[str, bytes]:
    """Many objects' contents through one ``git cat-file --batch``; missing ones are left out.

    One process streams what would otherwise be one dulwich look-up each (~60 µs):
    it is how a fresh index reads the records of thousands of runs at once.
    """
    import threading

    process = subprocess.Popen(
        ["git", "cat-file", "--batch"], cwd=root, env=git_env(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    requests = process.stdin

    def send() -> None:
        # Written from a thread: git answers while we are still asking, and
        # both pipes would fill up if we asked for everything first.
        try:
            requests.write(b"".join(object_id.encode() + b"\n" for object_id in object_ids))
        finally:
            requests.close()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    found: dict[str, bytes] = {}
    answers = process.stdout
    try:
        for _ in object_ids:
            header = answers.readline().split()
            if len(header) != 3:  # "<id> missing" (or ambiguous)
                continue
            size = int(header[2])
            found[header[0].decode()] = answers.read(size)
            answers.read(1)  # the newline after each object
    finally:
        sender.join()
        answers.close()
        process.wait()
    return found
