"""Deleting runs and keeping the ones that matter: ``runs delete``, ``runs pin`` and ``gc``.

``gc`` selects runs by age and count (``--older-than 90d``, ``--keep-last N``
per pipeline) and never selects a run that is pinned (``runs pin``, a team
ledger), part of a model version's stage, still running, or with
``keep_tagged`` one made from a tagged commit or annotated after it ran.
Deleting removes refs only (``store.removal``): what the runs alone reached
is freed by the next ``git gc``, and a kept run that reused a deleted run's
outputs still reaches them. With ``remote``, the deletion is the team's: it
goes into the ``refs/mlops/deleted`` ledger and is pushed at once, so the
remote drops the runs and no teammate's pull or push brings them back.

With ``blobs``, ``gc`` also deletes the artifact store's chunks that no run
here or on the team's remote uses any more and that are older than
``blob_grace`` (``operations.chunk_gc``); the remote is read before any run is
deleted, and if it cannot be, nothing is.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Final

from mlops_lite.errors import ConfigError, MlopsLiteError, ProtectedRunError, RunNotFoundError
from mlops_lite.operations.chunk_gc import collect_unused_chunks, read_team_refs
from mlops_lite.store import GitStore
from mlops_lite.store.chunk_collection import ChunkCollection
from mlops_lite.store.folding import RECENT_RUNS, fold_archives, fold_old_runs
from mlops_lite.store.folding import tidy as tidy_refs
from mlops_lite.store.git import run_git
from mlops_lite.store.index import RunIndex, RunRow
from mlops_lite.store.layout import RUNS_PREFIX, read_run_commit, run_ref
from mlops_lite.store.ledgers import PINS_REF, read_ledger, set_entries
from mlops_lite.store.registry import read_registry, registry_names
from mlops_lite.store.removal import freed_bytes, purge_archives, remove_runs
from mlops_lite.store.transport import TransferResult

__all__ = [
    "DEFAULT_BLOB_GRACE",
    "RetentionResult",
    "delete_runs",
    "gc",
    "parse_age",
    "pin_runs",
    "protected_runs",
    "tidy",
]

_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# A teammate's push uploads chunks before it moves refs: a day covers a slow push.
DEFAULT_BLOB_GRACE: Final = "1d"


def parse_age(text: str) -> float:
    """Seconds in ``"90d"``, ``"12h"``, ``"2w"``, ``"30m"`` or ``"45s"``; ConfigError otherwise."""
    match = _AGE.fullmatch(text)
    if match is None:
        raise ConfigError(
            f"age {text!r}: write a number and a unit, s m h d or w (e.g. 90d, 12h, 2w)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass
class RetentionResult:
    """What a deletion removed (or, with ``dry_run``, would remove) and what it kept."""

    deleted: list[RunRow] = field(default_factory=list)
    # run ref -> why it was kept although selected (pinned, in a stage, running, tagged)
    kept: dict[str, str] = field(default_factory=dict)
    # what the next `git gc` frees (None: git could not tell)
    freed_bytes: int | None = None
    dry_run: bool = False
    remote: TransferResult | None = None
    # with ``blobs``: the artifact store's chunks found and deleted
    chunks: ChunkCollection | None = None


def protected_runs(store: GitStore) -> dict[str, str]:
    """``{run ref: why}`` of the runs no deletion may touch: pinned ones, and model versions'.

    A run a model version was made by or attached to (``refs/mlops/models/*``)
    stays as long as the version does, whatever its stage: the version names
    the run as where it came from.
    """
    protected: dict[str, str] = {}
    for name in registry_names(store, "model"):
        try:
            state = read_registry(store, "model", name)
        except MlopsLiteError:
            continue  # an unreadable registry protects nothing it cannot name
        for version in state.versions.values() if state is not None else ():
            stage = "" if version.stage == "none" else f", {version.stage}"
            for run in [version.run, *version.runs]:
                pipeline, run_name = run.get("pipeline"), run.get("run")
                if pipeline and run_name:
                    protected[run_ref(pipeline, run_name)] = (
                        f"model {name} version {version.name}{stage}"
                    )
    protected.update(
        (ref, "pinned")
        for ref, entry in read_ledger(store, PINS_REF).items()
        if entry.value is True
    )
    return protected


def pin_runs(
    runs: list[str], *, unpin: bool = False, path: str | os.PathLike[str] | None = None
) -> list[RunRow]:
    """Pin (or unpin) runs: a pinned run is never deleted by ``gc`` or ``runs delete``.

    Pins are a team ledger (``refs/mlops/pins``): they travel with push and pull.
    """
    with GitStore.open(path) as store:
        index = RunIndex(store)
        try:
            index.refresh()
            rows = [_resolve(index, run) for run in runs]
            verb = "unpinned" if unpin else "pinned"
            set_entries(
                store,
                PINS_REF,
                {row.ref: not unpin for row in rows},
                message=f"mlops-lite: {verb} {len(rows)} run(s)\n",
            )
            return rows
        finally:
            index.close()


def delete_runs(
    runs: list[str],
    *,
    remote: str | None = None,
    dry_run: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> RetentionResult:
    """Delete the named runs (names, shas or sha prefixes); pinned runs are refused.

    ``remote`` deletes them for the team and pushes to that remote at once.
    """
    with GitStore.open(path) as store:
        index = RunIndex(store)
        try:
            index.refresh()
            rows = {row.ref: row for row in (_resolve(index, run) for run in runs)}
            protected = protected_runs(store)
            refused = {ref: protected[ref] for ref in rows if ref in protected}
            if refused:
                names = ", ".join(
                    f"{ref.removeprefix(RUNS_PREFIX)} ({why})" for ref, why in refused.items()
                )
                advice = []
                if "pinned" in refused.values():
                    advice.append("unpin a pinned run first (`mlops-lite runs unpin <run>`)")
                if any(why != "pinned" for why in refused.values()):
                    advice.append("a model version's runs stay as long as the version does")
                raise ProtectedRunError(
                    f"nothing was deleted: {names} must stay; " + "; ".join(advice)
                )
            return _delete(store, index, list(rows.values()), {}, remote=remote, dry_run=dry_run)
        finally:
            index.close()


def gc(
    *,
    keep_last: int | None = None,
    older_than: str | float | None = None,
    keep_tagged: bool = False,
    pipeline: str | None = None,
    remote: str | None = None,
    dry_run: bool = False,
    blobs: bool = False,
    blob_grace: str | float = DEFAULT_BLOB_GRACE,
    path: str | os.PathLike[str] | None = None,
) -> RetentionResult:
    """Delete runs beyond the newest ``keep_last`` of each pipeline and/or older than an age.

    A run is deleted only when every criterion given selects it; pinned runs,
    runs in a model stage, running ones and (``keep_tagged``) tagged or
    annotated ones never are. Without ``keep_last``, ``older_than`` or
    ``blobs`` nothing is selected: a ConfigError says so.

    ``blobs`` also deletes the artifact store's chunks that no ref here and no
    ``refs/mlops/*`` ref of the team's remote (``remote``, else ``origin``)
    reaches and that are older than ``blob_grace`` (an age or seconds); the
    remote is read first, and if it cannot be, nothing at all is deleted.
    """
    if keep_last is None and older_than is None and not blobs:
        raise ConfigError(
            "gc needs to know what to delete: give --keep-last N (per pipeline) "
            "and/or --older-than AGE (e.g. 90d), or --blobs for unused artifact store chunks"
        )
    if keep_last is not None and keep_last < 0:
        raise ConfigError(f"--keep-last {keep_last}: give 0 or more")
    age = parse_age(older_than) if isinstance(older_than, str) else older_than
    cutoff = time.time() - age if age is not None else None
    grace = parse_age(blob_grace) if isinstance(blob_grace, str) else float(blob_grace)
    with GitStore.open(path) as store:
        # Before anything is deleted: without the remote, nothing is.
        team_refs = read_team_refs(store, remote or "origin") if blobs else {}
        index = RunIndex(store)
        try:
            index.refresh()
            selected: list[RunRow] = []
            kept: dict[str, str] = {}
            if keep_last is not None or older_than is not None:
                selected, kept = _select(store, index, keep_last, cutoff, keep_tagged, pipeline)
            result = _delete(store, index, selected, kept, remote=remote, dry_run=dry_run)
            if not dry_run:
                purge_archives(store, index)
            if blobs:
                going = {row.ref: row.sha for row in result.deleted} if dry_run else {}
                result.chunks = collect_unused_chunks(
                    store,
                    index,
                    _team_refs_after(team_refs, result, going if remote is not None else {}),
                    going=going,
                    grace_seconds=grace,
                    dry_run=dry_run,
                )
            return result
        finally:
            index.close()


def _team_refs_after(
    team_refs: dict[str, str], result: RetentionResult, going: dict[str, str]
) -> dict[str, str]:
    """The remote's refs as the deletion leaves them: without those its push deleted there.

    ``going``: the runs a dry run with ``remote`` would delete there.
    """
    gone = set(result.remote.deleted) if result.remote is not None else set()
    return {ref: sha for ref, sha in team_refs.items() if ref not in gone and going.get(ref) != sha}


def tidy(path: str | os.PathLike[str] | None = None, *, keep: int = RECENT_RUNS) -> int:
    """Lay the runs out as they are kept at scale: fold everything beyond the newest ``keep``.

    Also what a push or pull does on its way (``store.folding.tidy``). Returns
    how many runs were folded into archives.
    """
    with GitStore.open(path) as store:
        index = RunIndex(store)
        try:
            tidy_refs(store, index, keep=keep)
            folded = fold_old_runs(store, index, keep=keep, everything=True)
            fold_archives(store, index)
            return folded
        finally:
            index.close()


def _resolve(index: RunIndex, run: str) -> RunRow:
    text = run.strip()
    rows = index.find(text) or (index.find(RUNS_PREFIX + text) if "/" in text else [])
    if len(rows) != 1:
        raise RunNotFoundError(
            f"{text!r} names {len(rows) or 'no'} runs"
            + (": give more of the sha" if rows else "; list them with `mlops-lite runs list`")
        )
    return rows[0]


def _select(
    store: GitStore,
    index: RunIndex,
    keep_last: int | None,
    cutoff: float | None,
    keep_tagged: bool,
    pipeline: str | None,
) -> tuple[list[RunRow], dict[str, str]]:
    """The runs ``gc`` deletes, and those it selected but keeps (with why)."""
    protected = protected_runs(store)
    tagged = _tagged_commits(store.root) if keep_tagged else set()
    annotated = set(store.refs.list("refs/mlops/metadata/")) if keep_tagged else set()
    seen: dict[str, int] = {}
    selected: list[RunRow] = []
    kept: dict[str, str] = {}
    for row in index.iter_runs(pipeline=pipeline):  # newest first
        position = seen.get(row.pipeline, 0)
        seen[row.pipeline] = position + 1
        if keep_last is not None and position < keep_last:
            continue
        if cutoff is not None and (row.start_time is None or row.start_time >= cutoff):
            continue
        why = protected.get(row.ref)
        if why is None and row.status == "running":
            why = "still running"
        if why is None and keep_tagged:
            if row.code_commit in tagged:
                why = "made from a tagged commit"
            elif "refs/mlops/metadata/" + row.ref.removeprefix(RUNS_PREFIX) in annotated:
                why = "annotated after it ran"
        if why is not None:
            kept[row.ref] = why
        else:
            selected.append(row)
    reused = _reused_by_kept_runs(store, index, selected)
    kept.update(reused)
    return [row for row in selected if row.ref not in reused], kept


def _reused_by_kept_runs(
    store: GitStore, index: RunIndex, selected: list[RunRow]
) -> dict[str, str]:
    """``{run ref: why}`` of the selected runs whose outputs a kept run's cached step reuses.

    The kept run would still load them (git keeps what it reaches), but its
    "cached from" would name a run that is gone: such runs are kept, and said so.
    Only the kept runs sharing a cache key with a selected one are read.
    """
    going = {(row.pipeline, row.run_name): row.ref for row in selected}
    if not going:
        return {}
    reused: dict[str, str] = {}
    for ref, sha in sorted(index.sharing_cache_keys([row.ref for row in selected]).items()):
        if ref in going.values():
            continue
        try:
            record = read_run_commit(store.read_object, sha, with_steps=False).record
        except MlopsLiteError:
            continue  # an unreadable run reuses nothing we can name
        for step, summary in record.step_summary.items():
            origin = summary.cached_from or {}
            target = going.get((origin.get("pipeline", ""), origin.get("run", "")))
            if target is not None and target not in reused:
                reused[target] = (
                    f"kept run {ref.removeprefix(RUNS_PREFIX)} reuses its outputs "
                    f"(step {step} was cached from it)"
                )
    return reused


def _tagged_commits(root: str) -> set[str]:
    listed = run_git(root, "for-each-ref", "--format=%(objectname) %(*objectname)", "refs/tags")
    return {sha for line in listed.splitlines() for sha in line.split()}


def _delete(
    store: GitStore,
    index: RunIndex,
    rows: list[RunRow],
    kept: dict[str, str],
    *,
    remote: str | None,
    dry_run: bool,
) -> RetentionResult:
    result = RetentionResult(deleted=rows, kept=kept, dry_run=dry_run)
    going = {row.ref: row.sha for row in rows}
    staying = [row.sha for row in index.iter_runs() if row.ref not in going]
    listed = run_git(store.root, "for-each-ref", "--format=%(objectname) %(refname)")
    others = [
        line.split(" ", 1)[0]
        for line in listed.splitlines()
        if not line.split(" ", 1)[-1].startswith((RUNS_PREFIX, "refs/mlops/archive/"))
    ]
    result.freed_bytes = freed_bytes(store.root, list(going.values()), staying + others)
    if dry_run or not rows:
        return result
    remove_runs(store, index, going, for_the_team=remote is not None)
    if remote is not None:
        from mlops_lite.operations.sharing import push

        result.remote = push(remote, path=store.root, quiet=True)
    return result
