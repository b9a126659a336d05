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
from typing import Any

from mlops_lite.errors import RefConflictError
from mlops_lite.records import pack_value, unpack_value
from mlops_lite.store.interface import ObjectRefStore
from mlops_lite.store.objects import MODE_BLOB, blob, commit, parse_commit, parse_tree, tree
from mlops_lite.store.repository import RUNS_PREFIX

METADATA_PREFIX = "refs/mlops/metadata/"
_EMPTY: dict[str, Any] = {"run": {}, "steps": {}}


def annotation_ref(run_ref: str) -> str:
    return METADATA_PREFIX + run_ref.removeprefix(RUNS_PREFIX)


def read_annotations(store: ObjectRefStore, run_ref: str) -> dict[str, Any]:
    """``{"run": {...}, "steps": {...}}`` logged after the run, or empty ones."""
    head = store.read_ref(annotation_ref(run_ref))
    if head is None:
        return {"run": {}, "steps": {}}
    return _state_at(store, head)


def _state_at(store: ObjectRefStore, commit_id: str) -> dict[str, Any]:
    tree_id = parse_commit(store.read_object(commit_id))["tree"][0].decode()
    entry = parse_tree(store.read_object(tree_id))["metadata.msgpack"]
    state = unpack_value(store.read_object(entry[1]))
    return {"run": dict(state.get("run", {})), "steps": dict(state.get("steps", {}))}


def add_annotations(
    store: ObjectRefStore, run_ref: str, metadata: Mapping[str, Any], *, step: str | None = None
) -> None:
    """Merge ``metadata`` into the run's (or one step's) annotations."""
    name = annotation_ref(run_ref)
    for _ in range(20):
        head = store.read_ref(name)
        state = _state_at(store, head) if head else {"run": {}, "steps": {}}
        if step is None:
            state["run"] = {**state["run"], **metadata}
        else:
            state["steps"][step] = {**state["steps"].get(step, {}), **metadata}
        state_blob = blob(pack_value(state))
        state_tree = tree({"metadata.msgpack": (MODE_BLOB, state_blob.id)})
        now = time.time()
        target = "step " + step if step else "run"
        new = commit(
            tree_id=state_tree.id,
            parents=[head] if head else [],
            author=store.identity,
            timestamp=now,
            tz_offset_minutes=int(time.localtime(now).tm_gmtoff // 60),
            message=f"mlops-lite metadata for {target} of {run_ref.removeprefix(RUNS_PREFIX)}\n",
        )
        store.write_objects([state_blob, state_tree, new])
        try:
            store.update_ref(name, new.id, head)
            return
        except RefConflictError:
            continue  # someone annotated at the same moment: merge over theirs
    raise RefConflictError(f"{name} kept changing; try logging the metadata again")
