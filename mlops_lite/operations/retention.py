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
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Final

from mlops_lite.errors import ConfigError, ProtectedRunError, RunNotFoundError
from mlops_lite.store import GitStore
from mlops_lite.store.folding import RECENT_RUNS, fold_old_runs
from mlops_lite.store.folding import tidy as tidy_refs
from mlops_lite.store.git import run_git
from mlops_lite.store.index import RunIndex, RunRow
from mlops_lite.store.layout import RUNS_PREFIX
from mlops_lite.store.ledgers import PINS_REF, read_ledger, set_entries
from mlops_lite.store.removal import freed_bytes, purge_archives, remove_runs
from mlops_lite.store.transport import TransferResult

__all__ = [
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


def protected_runs(store: GitStore) -> dict[str, str]:
    """``{run ref: why}`` of the runs no deletion may touch: pinned ones (and model stages)."""
    protected = {
        ref: "pinned" for ref, entry in read_ledger(store, PINS_REF).items() if entry.value is True
    }
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
                raise ProtectedRunError(
                    f"nothing was deleted: {names} must stay; unpin it first "
                    "(`mlops-lite runs unpin <run>`) if it really should go"
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
    path: str | os.PathLike[str] | None = None,
) -> RetentionResult:
    """Delete runs beyond the newest ``keep_last`` of each pipeline and/or older than an age.

    A run is deleted only when every criterion given selects it; pinned runs,
    runs in a model stage, running ones and (``keep_tagged``) tagged or
    annotated ones never are. Without ``keep_last`` or ``older_than`` nothing is
    selected: a ConfigError says so.
    """
    if keep_last is None and older_than is None:
        raise ConfigError(
            "gc needs to know which runs to delete: give --keep-last N (per pipeline) "
            "and/or --older-than AGE (e.g. 90d)"
        )
    if keep_last is not None and keep_last < 0:
        raise ConfigError(f"--keep-last {keep_last}: give 0 or more")
    age = parse_age(older_than) if isinstance(older_than, str) else older_than
    cutoff = time.time() - age if age is not None else None
    with GitStore.open(path) as store:
        index = RunIndex(store)
        try:
            index.refresh()
            selected, kept = _select(store, index, keep_last, cutoff, keep_tagged, pipeline)
            result = _delete(store, index, selected, kept, remote=remote, dry_run=dry_run)
            if not dry_run:
                purge_archives(store, index)
            return result
        finally:
            index.close()


def tidy(path: str | os.PathLike[str] | None = None, *, keep: int = RECENT_RUNS) -> int:
    """Lay the runs out as they are kept at scale: fold everything beyond the newest ``keep``.

    Also what a push or pull does on its way (``store.folding.tidy``). Returns
    how many runs were folded into archives.
    """
    with GitStore.open(path) as store:
        index = RunIndex(store)
        try:
            tidy_refs(store, index, keep=keep)
            return fold_old_runs(store, index, keep=keep, everything=True)
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
    return selected, kept


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
