"""The git CLI transport: runs `git push` / `git fetch` for `refs/mlops/*` and parses their output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from typing import IO

from mlops_lite.errors import RemoteError
from mlops_lite.store.transport.classify import _classify
from mlops_lite.store.transport.result import MLOPS_PREFIX, REFSPEC, TransferResult


def _run_git(
    args: list[str], cwd: str, *, show_stderr: bool = False, check: bool = True
) -> tuple[int, str, str]:
    """Run git; stderr is always captured (to classify errors) and echoed when asked."""
    env = dict(os.environ)
    if not _stdin_is_terminal():
        # Without a terminal a credential prompt would hang or fail obscurely.
        env.setdefault("GIT_TERMINAL_PROMPT", "0")
    process = subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    chunks: list[bytes] = []
    reader = threading.Thread(
        target=_drain, args=(process.stderr, chunks, show_stderr), daemon=True
    )
    reader.start()
    stdout = process.stdout.read()
    code = process.wait()
    reader.join()
    stderr = b"".join(chunks).decode("utf-8", "replace")
    if check and code != 0:
        raise RemoteError(f"git {' '.join(args)} failed: {stderr.strip()}")
    return code, stdout.decode("utf-8", "replace"), stderr


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


def _drain(stream: IO[bytes], chunks: list[bytes], echo: bool) -> None:
    pending = ""
    while chunk := os.read(stream.fileno(), 65536):
        chunks.append(chunk)
        if echo:
            # Echo whole lines (progress redraws end in \r) minus `fetch -v`'s one line per
            # unchanged ref: with 1,000 runs those would bury the progress.
            pending += chunk.decode("utf-8", "replace")
            *complete, pending = re.split(r"(?<=[\r\n])", pending)
            shown = [line for line in complete if not line.startswith(" = [up to date]")]
            sys.stderr.write("".join(shown))
            sys.stderr.flush()
    if echo and pending:
        sys.stderr.write(pending)


# "Writing objects: 100% (8008/8008), 1.20 MiB | ..." (push) and the fetch equivalents
_OBJECTS_LINE = re.compile(
    r"(?:Writing|Receiving|Unpacking) objects: 100% \((\d+)/\d+\)"
    r"(?:, ([\d.]+) (bytes|KiB|MiB|GiB))?"
)
_TOTAL_LINE = re.compile(r"^Total (\d+) \(delta", re.MULTILINE)
_UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def _objects_and_bytes(stderr: str) -> tuple[int | None, int | None]:
    found = _OBJECTS_LINE.findall(stderr)
    if found:
        count, size, unit = found[-1]
        return int(count), int(float(size) * _UNITS[unit]) if size else None
    total = _TOTAL_LINE.search(stderr)
    return (int(total.group(1)), None) if total else (None, None)


def _git_push(start_dir: str, remote: str, progress: bool) -> TransferResult:
    code, stdout, stderr = _run_git(
        # --progress always: the counts feed the result; they reach the terminal only if asked.
        [
            "push",
            "--porcelain",
            "--progress",
            "--no-follow-tags",
            "--no-recurse-submodules",
            remote,
            REFSPEC,
        ],
        start_dir,
        show_stderr=progress,
        check=False,
    )
    result = TransferResult("push", remote, "git")
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or ":" not in parts[1]:
            continue
        flag, target, summary = parts[0], parts[1].split(":", 1)[1], parts[2]
        if flag == "*":
            result.created.append(target)
        elif flag == " ":
            result.updated.append(target)
        elif flag == "=":
            result.unchanged.append(target)
        elif flag == "!":
            # "[rejected] (non-fast-forward)", "[remote rejected] (hook declined)"
            reason = re.match(r"\[([^\]]*)\](?: \((.*)\))?", summary)
            result.rejected[target] = (reason.group(2) or reason.group(1)) if reason else summary
    if code != 0 and not result.rejected:
        raise _classify(remote, "push", stderr)
    objects, size = _objects_and_bytes(stderr)
    changed = bool(result.created or result.updated)
    result.transferred_objects = objects if objects is not None else (None if changed else 0)
    result.transferred_bytes = size if size is not None else (None if changed else 0)
    return result


def _local_refs(start_dir: str) -> dict[str, str]:
    _, stdout, _ = _run_git(
        ["for-each-ref", "--format=%(objectname) %(refname)", MLOPS_PREFIX], start_dir
    )
    pairs = (line.split(" ", 1) for line in stdout.splitlines() if line)
    return {name: sha for sha, name in pairs}


# " * [new ref]   refs/mlops/a -> refs/mlops/a" / " ! [rejected]  a -> a  (non-fast-forward)"
_FETCH_LINE = re.compile(r"^ (.) (\[[^\]]+\]|\S+)\s+(\S+)\s+->\s+(\S+)(?:\s+\((.+)\))?$")


def _git_pull(start_dir: str, remote: str, progress: bool) -> TransferResult:
    before = _local_refs(start_dir)
    code, _, stderr = _run_git(
        # --no-prune: a user's fetch.prune must never delete local runs the remote lacks;
        # --no-tags: never touch the user's tags; full output: parseable ref lines.
        [
            "-c",
            "fetch.output=full",
            "fetch",
            "-v",
            "--progress",
            "--no-prune",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-recurse-submodules",
            remote,
            REFSPEC,
        ],
        start_dir,
        show_stderr=progress,
        check=False,
    )
    result = TransferResult("pull", remote, "git")
    for line in re.split(r"[\r\n]+", stderr):
        match = _FETCH_LINE.match(line)
        if match is None:
            continue
        flag, summary, target, reason = (
            match.group(1),
            match.group(2),
            match.group(4),
            match.group(5),
        )
        if flag == "!":
            result.rejected[target] = reason or summary.strip("[]")
        elif flag == "=":
            result.unchanged.append(target)
    if code != 0 and not result.rejected:
        raise _classify(remote, "pull", stderr)
    after = _local_refs(start_dir)
    result.created = sorted(name for name in after if name not in before)
    result.updated = sorted(
        name for name in after if name in before and before[name] != after[name]
    )
    result.transferred_objects, result.transferred_bytes = _objects_and_bytes(stderr)
    if result.transferred_objects is None and not result.created and not result.updated:
        result.transferred_objects, result.transferred_bytes = 0, 0
    return result
