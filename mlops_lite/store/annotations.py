"""Metadata added to a run after it was recorded, kept beside the run, never in it.

A run commit is immutable (its sha is how people name and rerun it), so
metadata logged later lives under ``refs/mlops/metadata/<pipeline>/<run-name>``:
a chain of commits whose tree holds ``metadata.msgpack`` (the merged state:
``{"run": {...}, "steps": {step: {...}}}``), each parent the previous state.
Writers merge and compare-and-swap, so concurrent annotations lose nothing;
the ref travels with ``mlops-lite push``/``pull`` like the runs themselves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from mlops_lite.core.records import pack_value, unpack_value
from mlops_lite.errors import RecordError, RefConflictError
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import RUNS_PREFIX, annotation_ref, read_tree_blob, utc_offset_minutes
from mlops_lite.store.objects import MODE_BLOB, blob, commit, tree

__all__ = ["Annotations", "add_annotations", "decode_state", "read_annotations"]

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
    for _ in range(20):
        head = store.refs.read(name)
        state = _state_at(store, head) if head else {"run": {}, "steps": {}}
        if step is None:
            state["run"] = {**state["run"], **metadata}
        else:
            state["steps"][step] = {**state["steps"].get(step, {}), **metadata}
        state_blob = blob(pack_value(state))
        state_tree = tree({_STATE: (MODE_BLOB, state_blob.id)})
        now = time.time()
        target = "step " + step if step else "run"
        new = commit(
            tree_id=state_tree.id,
            parents=[head] if head else [],
            author=store.identity,
            timestamp=now,
            tz_offset_minutes=utc_offset_minutes(now),
            message=f"mlops-lite metadata for {target} of {run_ref.removeprefix(RUNS_PREFIX)}\n",
        )
        keep = store.write_objects([state_blob, state_tree, new], ref=name)
        try:
            store.refs.compare_and_swap(name, head, new.id)
            return
        except RefConflictError:
            continue  # someone annotated at the same moment: merge over theirs
        finally:
            keep.release()
    raise RefConflictError(f"{name} kept changing; try logging the metadata again")
