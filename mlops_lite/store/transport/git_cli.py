"""The git CLI transport: `git push` / `git fetch` of `refs/mlops/*`, and parsing their output."""

from __future__ import annotations

import re

from mlops_lite.errors import StoreError
from mlops_lite.store.git import run_git_streaming
from mlops_lite.store.layout import MLOPS_PREFIX, REFSPEC, RUNS_PREFIX
from mlops_lite.store.refs import DiskRefs, is_valid_ref_name
from mlops_lite.store.transport.classify import _classify
from mlops_lite.store.transport.result import (
    RUN_EXISTS,
    TransferResult,
    merge_diverged_metadata,
    plan_pull,
)

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


def _remote_refs(start_dir: str, remote: str) -> dict[str, str]:
    """``{name: sha}`` of every ``refs/mlops/*`` ref the remote advertises (``git ls-remote``)."""
    listed = run_git_streaming(start_dir, ["ls-remote", "--refs", remote, f"{MLOPS_PREFIX}*"])
    if listed.code != 0:
        raise _classify(remote, "pull", listed.stderr)
    refs: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name.startswith(MLOPS_PREFIX):
            refs[name] = sha
    return refs


# " * [new ref]   refs/mlops/a -> refs/mlops/a" / " ! [rejected]  a -> a  (non-fast-forward)"
_FETCH_LINE = re.compile(r"^ (.) (\[[^\]]+\]|\S+)\s+(\S+)\s+->\s+(\S+)(?:\s+\((.+)\))?$")


def git_pull(start_dir: str, remote: str, progress: bool) -> TransferResult:
    """Fetch every `refs/mlops/*` ref with `git fetch`: never forcing, pruning or rewriting a run.

    The remote's refs are listed first (``git ls-remote``): names that are not
    well-formed mlops-lite refs, and runs we already have with another value,
    are refused and left out of the fetch with negative refspecs, because
    ``git fetch`` would fast-forward a run ref. A run ref that changed on the
    remote between the listing and the fetch is put back.
    """
    before = _local_refs(start_dir)
    take, refused = plan_pull(_remote_refs(start_dir, remote), before)
    result = TransferResult("pull", remote, "git", advertised=take)
    result.rejected.update(refused)
    if all(before.get(name) == sha for name, sha in take.items()):
        result.unchanged = sorted(take)
        result.transferred_objects, result.transferred_bytes = 0, 0
        return result
    # Only names git itself accepts can be excluded (others make a refspec invalid):
    # a remote advertising those fails the fetch in git itself, cleanly.
    excluded = [f"^{name}" for name in refused if is_valid_ref_name(name, fits_on_disk=False)]
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
            *excluded,
        ],
        show_stderr=progress,
        hide=_UP_TO_DATE,
    )
    code, stderr = completed.code, completed.stderr
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
    merge_diverged_metadata(start_dir, take, result)
    after = _local_refs(start_dir)
    _restore_moved_runs(start_dir, before, after, result)
    result.created = sorted(name for name in after if name not in before)
    result.updated = sorted(
        name
        for name in after
        if name in before and before[name] != after[name] and name not in result.merged
    )
    result.transferred_objects, result.transferred_bytes = _objects_and_bytes(stderr)
    if result.transferred_objects is None and not result.created and not result.updated:
        result.transferred_objects, result.transferred_bytes = 0, 0
    return result


def _restore_moved_runs(
    start_dir: str, before: dict[str, str], after: dict[str, str], result: TransferResult
) -> None:
    """Put back a run ref the fetch moved (the remote changed after it was listed)."""
    from mlops_lite.store.repository import GitStore

    moved = [
        name
        for name, sha in before.items()
        if name.startswith(RUNS_PREFIX) and after.get(name, sha) != sha
    ]
    if not moved:
        return
    with GitStore.open(start_dir) as store:
        for name in moved:
            try:
                store.refs.compare_and_swap(name, after[name], before[name])
            except StoreError:
                continue  # moved again by someone else: theirs to explain
            after[name] = before[name]
            result.rejected[name] = RUN_EXISTS
