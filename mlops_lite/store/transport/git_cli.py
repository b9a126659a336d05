"""The git CLI transport: listing a remote's refs, `git fetch` and `git push` of them, parsed.

These are the moves; which refs to move is decided in ``exchange.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mlops_lite.store.git import GitResult, StartedGit, run_git_streaming
from mlops_lite.store.layout import MLOPS_PREFIX, REFSPEC
from mlops_lite.store.transport.classify import _classify
from mlops_lite.store.transport.result import Direction, FetchReport, TransferResult

__all__ = ["git_fetch", "git_listing", "git_push"]

# `fetch -v` prints one line per unchanged ref: with 1,000 runs those would bury the progress.
_UP_TO_DATE = re.compile(r" = \[up to date\]")


# "Writing objects: 100% (8008/8008), 1.20 MiB | ..." (push) and the fetch equivalents
_OBJECTS_LINE = re.compile(
    r"(?:Writing|Receiving|Unpacking) objects: 100% \((\d+)/\d+\)"
    r"(?:, ([\d.]+) (bytes|KiB|MiB|GiB))?"
)
_TOTAL_LINE = re.compile(r"^Total (\d+) \(delta", re.MULTILINE)
_UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
# Refspecs per `git push`: a command line holds a few hundred kilobytes at most.
_PUSH_BATCH = 2000


def _objects_and_bytes(stderr: str) -> tuple[int | None, int | None]:
    found = _OBJECTS_LINE.findall(stderr)
    if found:
        count, size, unit = found[-1]
        return int(count), int(float(size) * _UNITS[unit]) if size else None
    total = _TOTAL_LINE.search(stderr)
    return (int(total.group(1)), None) if total else (None, None)


def git_push(
    start_dir: str,
    remote: str,
    progress: bool,
    *,
    deletions: dict[str, str] | None = None,
) -> TransferResult:
    """Push every `refs/mlops/*` ref with `git push`, never forcing.

    With ``deletions`` (``{ref: the value the remote must still have}``), delete
    those refs on the remote instead, each only if it still has that value
    (``--force-with-lease``): a ref a teammate moved meanwhile is left alone.
    """
    result = TransferResult("push", remote, "git")
    batches: list[list[str]] = [[REFSPEC]]
    if deletions is not None:
        names = sorted(deletions)
        batches = [
            names[start : start + _PUSH_BATCH] for start in range(0, len(names), _PUSH_BATCH)
        ]
    for batch in batches:
        if deletions is None:
            arguments = batch
        else:
            arguments = [f"--force-with-lease={name}:{deletions[name]}" for name in batch]
            arguments += [remote, *(f":{name}" for name in batch)]
        _push_once(start_dir, remote, progress, arguments, deletions is not None, result)
    return result


def _push_once(
    start_dir: str,
    remote: str,
    progress: bool,
    arguments: list[str],
    deleting: bool,
    result: TransferResult,
) -> None:
    command = ["push", "--porcelain", "--progress", "--no-follow-tags", "--no-recurse-submodules"]
    command += arguments if deleting else [remote, *arguments]
    # --progress always: the counts feed the result; they reach the terminal only if asked.
    completed = run_git_streaming(start_dir, command, show_stderr=progress)
    code, stdout, stderr = completed.code, completed.stdout, completed.stderr
    rejected_before = len(result.rejected)
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or ":" not in parts[1]:
            continue
        flag, target, summary = parts[0], parts[1].split(":", 1)[1], parts[2]
        if flag == "*":
            result.created.append(target)
        elif flag == "-":
            result.deleted.append(target)
        elif flag == " ":
            result.updated.append(target)
        elif flag == "=":
            result.unchanged.append(target)
        elif flag == "!":
            # "[rejected] (non-fast-forward)", "[remote rejected] (hook declined)"
            reason = re.match(r"\[([^\]]*)\](?: \((.*)\))?", summary)
            why = (reason.group(2) or reason.group(1)) if reason else summary
            if deleting:
                result.kept[target] = why  # moved on the remote meanwhile: theirs now
            else:
                result.rejected[target] = why
    if code != 0 and len(result.rejected) == rejected_before and not deleting:
        raise _classify(remote, "push", stderr)
    objects, size = _objects_and_bytes(stderr)
    changed = bool(result.created or result.updated)
    if not deleting:
        result.transferred_objects = objects if objects is not None else (None if changed else 0)
        result.transferred_bytes = size if size is not None else (None if changed else 0)


@contextmanager
def git_listing(
    start_dir: str, remote: str, direction: Direction
) -> Iterator[Callable[[], dict[str, str]]]:
    """``git ls-remote`` of the remote's ``refs/mlops/*``, started now.

    The callable waits for it: ``{name: sha}`` of every ref the remote advertises.
    """
    command = ["ls-remote", "--refs", remote, f"{MLOPS_PREFIX}*"]
    with StartedGit(start_dir, command) as started:
        yield lambda: _listed_refs(started.result(), remote, direction)


def _listed_refs(listed: GitResult, remote: str, direction: Direction) -> dict[str, str]:
    if listed.code != 0:
        raise _classify(remote, direction, listed.stderr)
    refs: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name.startswith(MLOPS_PREFIX):
            refs[name] = sha
    return refs


# " * [new ref]   refs/mlops/a -> refs/mlops/a" / " ! [rejected]  a -> a  (non-fast-forward)"
_FETCH_LINE = re.compile(r"^ (.) (\[[^\]]+\]|\S+)\s+(\S+)\s+->\s+(\S+)(?:\s+\((.+)\))?$")


def git_fetch(
    start_dir: str,
    remote: str,
    take: dict[str, str],
    objects_only: dict[str, str],
    progress: bool,
) -> FetchReport:
    """Fetch the refs of ``take`` into the same local refs, and the objects of ``objects_only``.

    Never forced, never pruning, never touching tags: a local ref that the
    remote's value does not fast-forward is reported in ``rejected``. The
    refspecs go through ``--stdin``, so 100,000 of them fit.
    """
    refspecs = [f"{name}:{name}" for name in sorted(take)] + sorted(objects_only)
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
            "--stdin",
            remote,
        ],
        show_stderr=progress,
        hide=_UP_TO_DATE,
        stdin="".join(spec + "\n" for spec in refspecs).encode(),
    )
    report = FetchReport()
    for line in re.split(r"[\r\n]+", completed.stderr):
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
            report.rejected[target] = reason or summary.strip("[]")
    if completed.code != 0 and not report.rejected:
        raise _classify(remote, "pull", completed.stderr)
    report.objects, report.bytes = _objects_and_bytes(completed.stderr)
    return report
