"""The git CLI transport: `git push` / `git fetch` of `refs/mlops/*`, and parsing their output."""

from __future__ import annotations

import re

from mlops_lite.store.git import run_git_streaming
from mlops_lite.store.layout import MLOPS_PREFIX, REFSPEC
from mlops_lite.store.refs import DiskRefs
from mlops_lite.store.transport.classify import _classify
from mlops_lite.store.transport.result import TransferResult

__all__ = ["git_pull", "git_push"]

# `fetch -v` prints one line per unchanged ref: with 1,000 runs those would bury the progress.
_UP_TO_DATE = re.compile(r" = \[up to date\]")


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


def git_push(start_dir: str, remote: str, progress: bool) -> TransferResult:
    """Push every `refs/mlops/*` ref with `git push`, never forcing."""
    completed = run_git_streaming(
        start_dir,
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
        show_stderr=progress,
    )
    code, stdout, stderr = completed.code, completed.stdout, completed.stderr
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
    from mlops_lite.store.repository import GitStore

    with GitStore.open(start_dir) as store:
        assert isinstance(store.refs, DiskRefs)
        return store.refs.list(MLOPS_PREFIX)


# " * [new ref]   refs/mlops/a -> refs/mlops/a" / " ! [rejected]  a -> a  (non-fast-forward)"
_FETCH_LINE = re.compile(r"^ (.) (\[[^\]]+\]|\S+)\s+(\S+)\s+->\s+(\S+)(?:\s+\((.+)\))?$")


def git_pull(start_dir: str, remote: str, progress: bool) -> TransferResult:
    """Fetch every `refs/mlops/*` ref with `git fetch`, never forcing, never pruning."""
    before = _local_refs(start_dir)
    completed = run_git_streaming(
        start_dir,
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
        show_stderr=progress,
        hide=_UP_TO_DATE,
    )
    code, stderr = completed.code, completed.stderr
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
