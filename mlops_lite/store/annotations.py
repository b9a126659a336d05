"""Metadata added to a run after it was recorded, kept beside the run, never in it.

A run commit is immutable (its sha is how people name and rerun it), so
metadata logged later lives under ``refs/mlops/metadata/<pipeline>/<run-name>``:
a chain of commits whose tree holds ``metadata.msgpack`` (the merged state:
``{"run": {...}, "steps": {step: {...}}}``), each parent the previous state.
Writers merge and compare-and-swap, so concurrent annotations lose nothing;
the ref travels with ``mlops-lite push``/``pull`` like the runs themselves, and
a pull that finds a teammate's chain diverged from ours joins the two with a
merge commit (``merge_annotations``) instead of refusing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from mlops_lite.core.records import pack_value, unpack_value
from mlops_lite.errors import MlopsLiteError, RecordError, RefConflictError
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import (
    METADATA_PREFIX,
    RUNS_PREFIX,
    annotation_ref,
    read_tree_blob,
)
from mlops_lite.store.state_commits import commit_state

__all__ = [
    "Annotations",
    "add_annotations",
    "decode_state",
    "merge_annotations",
    "read_annotations",
]

_STATE: Final = "metadata.msgpack"

Annotations = dict[str, dict[str, Any]]


def read_annotations(store: Store, run_ref: str) -> Annotations:
    """``{"run": {...}, "steps": {step: {...}}}`` logged after the run (empty when none)."""
    head = store.refs.read(annotation_ref(run_ref))
    if head is None:
        return {"run": {}, "steps": {}}
    return _state_at(store, head)


def _state_at(store: Store, commit_id: str) -> Annotations:
    where = f"metadata of {commit_id[:10]}"
    return decode_state(read_tree_blob(store.read_object, commit_id, _STATE), where=where)


def decode_state(data: bytes, *, where: str = "metadata") -> Annotations:
    """A ``metadata.msgpack`` read back; ``RecordError`` for anything that is not one."""
    state = unpack_value(data, where=where)
    run = state.get("run", {}) if isinstance(state, dict) else None
    steps = state.get("steps", {}) if isinstance(state, dict) else None
    if (
        not isinstance(run, dict)
        or not isinstance(steps, dict)
        or not all(isinstance(name, str) and isinstance(v, dict) for name, v in steps.items())
    ):
        raise RecordError(f"{where} is not a metadata state")
    return {"run": dict(run), "steps": {name: dict(values) for name, values in steps.items()}}


def add_annotations(
    store: Store, run_ref: str, metadata: Mapping[str, Any], *, step: str | None = None
) -> None:
    """Merge ``metadata`` into the run's (or one step's) annotations."""
    name = annotation_ref(run_ref)
    target = "step " + step if step else "run"
    message = f"mlops-lite metadata for {target} of {run_ref.removeprefix(RUNS_PREFIX)}\n"
    for _ in range(20):
        head = store.refs.read(name)
        state = _state_at(store, head) if head else {"run": {}, "steps": {}}
        if step is None:
            state["run"] = {**state["run"], **metadata}
        else:
            state["steps"][step] = {**state["steps"].get(step, {}), **metadata}
        if _commit_state(store, name, state, [head] if head else [], message):
            return
        # someone annotated at the same moment: merge over theirs
    raise RefConflictError(f"{name} kept changing; try logging the metadata again")


def merge_annotations(store: Store, name: str, theirs: str) -> bool:
    """Join a teammate's metadata chain for the same run into ours, with a merge commit.

    Both chains only ever add keys, so the merged state is theirs updated with
    ours (ours wins on a key both set), and its parents are both heads: the
    result fast-forwards both sides, so a push after it goes through. False
    when their state cannot be read (or is not here): the ref stays as it is.
    """
    if not name.startswith(METADATA_PREFIX):
        return False
    run = name.removeprefix(METADATA_PREFIX)
    for _ in range(20):
        ours = store.refs.read(name)
        if ours is None or ours == theirs:
            return False
        try:
            mine, other = _state_at(store, ours), _state_at(store, theirs)
        except MlopsLiteError:
            return False
        steps = {
            step: {**other["steps"].get(step, {}), **mine["steps"].get(step, {})}
            for step in {*other["steps"], *mine["steps"]}
        }
        merged = {"run": {**other["run"], **mine["run"]}, "steps": steps}
        message = f"mlops-lite metadata of {run}: merged a teammate's\n"
        if _commit_state(store, name, merged, [ours, theirs], message):
            return True
    return False


def _commit_state(
    store: Store, name: str, state: Annotations, parents: list[str], message: str
) -> bool:
    """Move ``name`` from ``parents[0]`` to a commit of ``state``; False if it moved meanwhile."""
    return commit_state(store, name, _STATE, pack_value(state), parents, message)
