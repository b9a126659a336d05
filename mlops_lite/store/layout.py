"""Where things live in git: ref namespaces, and the trees of a run commit.

Refs::

    refs/mlops/runs/<pipeline>/<run-name>       a run commit (write-once)
    refs/mlops/metadata/<pipeline>/<run-name>   metadata added to that run later

Run commit tree::

    run.msgpack                          the RunRecord
    steps/<step>/step.msgpack            the StepRecord
    steps/<step>/logs.txt                captured stdout, stderr and logging
    steps/<step>/outputs/<output>        the artifact tree (content-addressed)

The commit's first parent is the code commit the run is pinned to, so pushing a
run pushes its code and ``git gc`` keeps it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from mlops_lite.core.ids import ArtifactId, CommitId, ObjectId
from mlops_lite.core.names import NAME_PATTERN, NAME_WITHOUT_DOTS_PATTERN, is_valid_name
from mlops_lite.core.records import RunRecord, StepRecord
from mlops_lite.errors import RecordError
from mlops_lite.store.objects import (
    BLOB,
    COMMIT,
    MODE_BLOB,
    MODE_TREE,
    TREE,
    GitObject,
    Identity,
    ObjectReader,
    blob,
    commit,
    parse_commit,
    parse_tree,
    tree,
)
from mlops_lite.store.refs import is_valid_ref_name

__all__ = [
    "METADATA_PREFIX",
    "MLOPS_PREFIX",
    "REFSPEC",
    "RUNS_PREFIX",
    "RunCommit",
    "annotation_ref",
    "are_run_refs",
    "build_run_commit",
    "build_step_tree",
    "is_shareable_ref",
    "parse_run_ref",
    "read_run_commit",
    "read_step_entries",
    "read_step_record",
    "read_tree_blob",
    "run_ref",
    "utc_offset_minutes",
]

MLOPS_PREFIX: Final = "refs/mlops/"
RUNS_PREFIX: Final = "refs/mlops/runs/"
METADATA_PREFIX: Final = "refs/mlops/metadata/"
# No leading `+`: runs are immutable and uniquely named, so a ref that would need
# forcing is a real conflict to report, never something to overwrite.
REFSPEC: Final = "refs/mlops/*:refs/mlops/*"

RUN_RECORD: Final = "run.msgpack"
STEPS: Final = "steps"
STEP_RECORD: Final = "step.msgpack"
STEP_LOGS: Final = "logs.txt"
STEP_OUTPUTS: Final = "outputs"

ReadObject = ObjectReader


def run_ref(pipeline_name: str, run_name: str) -> str:
    """The ref of a run."""
    return f"{RUNS_PREFIX}{pipeline_name}/{run_name}"


def parse_run_ref(ref: str) -> tuple[str, str] | None:
    """``(pipeline, run name)`` of a well-formed run ref, else None."""
    # One match per ref (not two name checks): a fresh clone checks 100,000 listed refs.
    match = _RUN_REF.fullmatch(ref) if isinstance(ref, str) else None
    if match is None:
        return None
    pipeline, run_name = match.groups()
    if ".." in run_name or run_name.endswith(".lock"):
        return None  # the rest of ``is_valid_name``: the pipeline has no dots at all
    return pipeline, run_name


_RUN_REF: Final = re.compile(
    f"{re.escape(RUNS_PREFIX)}({NAME_WITHOUT_DOTS_PATTERN})/({NAME_PATTERN})"
)
_ANY_RUN_REF: Final = f"{re.escape(RUNS_PREFIX)}{NAME_WITHOUT_DOTS_PATTERN}/{NAME_PATTERN}"
_RUN_REF_LINES: Final = re.compile(f"(?:{_ANY_RUN_REF}\n)*{_ANY_RUN_REF}")


def are_run_refs(refs: list[str]) -> bool:
    """Whether every item is a well-formed run ref (``parse_run_ref``), in one match over all.

    An archive's listing names 100 runs, and a fresh clone reads a thousand listings.
    """
    if not refs:
        return True
    if not set(map(type, refs)) <= {str}:
        return False
    joined = "\n".join(refs)
    # A ref holding a newline would pass as two: the count of lines must be the count of refs.
    # Dots can only be in run names, each ending at a newline or at the end.
    return (
        joined.count("\n") == len(refs) - 1
        and _RUN_REF_LINES.fullmatch(joined) is not None
        and ".." not in joined
        and ".lock\n" not in joined + "\n"
    )


# How deep a ref under refs/mlops/ may nest (refs/mlops/<kind>/<a>/<b>/... ).
_MAX_SHARED_DEPTH: Final = 8


def is_shareable_ref(name: object) -> bool:
    """Whether ``name`` may travel in a push or pull: a well-formed ref under ``refs/mlops/``.

    Run and metadata refs must have a run's exact shape; other namespaces
    (stages, models) are made of valid names. Anything else from a remote is
    refused, however git itself would treat it.
    """
    if (
        not isinstance(name, str)
        or not name.startswith(MLOPS_PREFIX)
        or not is_valid_ref_name(name)
    ):
        return False
    if name.startswith(RUNS_PREFIX):
        return parse_run_ref(name) is not None
    if name.startswith(METADATA_PREFIX):
        return parse_run_ref(RUNS_PREFIX + name.removeprefix(METADATA_PREFIX)) is not None
    components = name.removeprefix(MLOPS_PREFIX).split("/")
    return len(components) <= _MAX_SHARED_DEPTH and all(map(is_valid_name, components))


def annotation_ref(ref: str) -> str:
    """The metadata ref beside a run ref."""
    return METADATA_PREFIX + ref.removeprefix(RUNS_PREFIX)


# building -----------------------------------------------------------------


def build_step_tree(
    record: StepRecord, logs: str, outputs: Mapping[str, ArtifactId]
) -> tuple[GitObject, list[GitObject]]:
    """A step's subtree (record, logs, output artifacts) and its new objects."""
    record_blob = blob(record.encode())
    objects = [record_blob]
    entries = {STEP_RECORD: (MODE_BLOB, record_blob.id)}
    if logs:
        logs_blob = blob(logs.encode("utf-8", "replace"))
        objects.append(logs_blob)
        entries[STEP_LOGS] = (MODE_BLOB, logs_blob.id)
    if outputs:
        outputs_tree = tree(
            {name: (MODE_TREE, artifact_id) for name, artifact_id in outputs.items()}
        )
        objects.append(outputs_tree)
        entries[STEP_OUTPUTS] = (MODE_TREE, outputs_tree.id)
    step_tree = tree(entries)
    objects.append(step_tree)
    return step_tree, objects


def build_run_commit(
    identity: Identity, record: RunRecord, steps: Mapping[str, ObjectId], code_commit: str
) -> tuple[GitObject, list[GitObject]]:
    """The run commit for ``record`` with the given step subtrees, and its new objects."""
    record_blob = blob(record.encode())
    objects = [record_blob]
    entries = {RUN_RECORD: (MODE_BLOB, record_blob.id)}
    if steps:
        steps_tree = tree({name: (MODE_TREE, tree_id) for name, tree_id in steps.items()})
        objects.append(steps_tree)
        entries[STEPS] = (MODE_TREE, steps_tree.id)
    run_tree = tree(entries)
    objects.append(run_tree)
    timestamp = record.end_time or record.start_time
    message = f"mlops-lite run {record.pipeline_name}/{record.run_name}: {record.status}\n"
    run_commit = commit(
        tree_id=run_tree.id,
        parents=[code_commit],
        author=identity,
        timestamp=timestamp,
        tz_offset_minutes=utc_offset_minutes(timestamp),
        message=message,
    )
    objects.append(run_commit)
    return run_commit, objects


def utc_offset_minutes(timestamp: float) -> int:
    """The local time zone's offset at ``timestamp``, as git records it."""
    return int(time.localtime(timestamp).tm_gmtoff // 60)


# reading ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunCommit:
    """A run commit, read: its record, step subtrees and the code commit it is pinned to."""

    sha: CommitId
    record: RunRecord
    steps: dict[str, ObjectId]
    code_commit: CommitId
    entries: dict[str, tuple[int, str]]


def _commit_tree(
    read_object: ReadObject, commit_id: str
) -> tuple[dict[str, list[bytes]], dict[str, tuple[int, str]]]:
    """A commit's headers and its tree's entries; RecordError when it is no commit with a tree."""
    headers = parse_commit(read_object(commit_id, COMMIT))
    trees = headers.get("tree")
    if not trees:
        raise RecordError(f"{commit_id} is not a commit with a tree")
    return headers, parse_tree(read_object(trees[0].decode("ascii", "replace"), TREE))


def _blob_entry(entries: dict[str, tuple[int, str]], name: str, where: str) -> str:
    entry = entries.get(name)
    if entry is None or entry[0] != MODE_BLOB:
        raise RecordError(f"{where} has no {name}")
    return entry[1]


def read_tree_blob(read_object: ReadObject, commit_id: str, name: str) -> bytes:
    """The blob at ``name`` in a commit's tree (commit → tree → blob), checked at every step."""
    _, entries = _commit_tree(read_object, commit_id)
    return read_object(_blob_entry(entries, name, f"commit {commit_id}"), BLOB)


def read_run_commit(read_object: ReadObject, sha: str, *, with_steps: bool = True) -> RunCommit:
    """Read and check a run commit; RecordError (or MissingObjectError) when it is not one."""
    headers, entries = _commit_tree(read_object, sha)
    record_blob = _blob_entry(entries, RUN_RECORD, f"{sha} (not a run commit)")
    record = RunRecord.decode(read_object(record_blob, BLOB), where=f"run {sha[:10]}")
    parents = headers.get("parent", [])
    code_commit = parents[0].decode("ascii", "replace") if parents else ""
    steps: dict[str, ObjectId] = {}
    steps_entry = entries.get(STEPS)
    if with_steps and steps_entry is not None and steps_entry[0] == MODE_TREE:
        steps = {
            name: ObjectId(tree_id)
            for name, (mode, tree_id) in parse_tree(read_object(steps_entry[1], TREE)).items()
            if mode == MODE_TREE and is_valid_name(name)
        }
    return RunCommit(CommitId(sha), record, steps, CommitId(code_commit), entries)


def read_step_entries(read_object: ReadObject, step_tree: str) -> dict[str, tuple[int, str]]:
    """The entries of a step's subtree (record, logs, outputs)."""
    return parse_tree(read_object(step_tree, TREE))


def read_step_record(read_object: ReadObject, step_tree: str, *, where: str) -> StepRecord:
    """The record of a step subtree."""
    entry = read_step_entries(read_object, step_tree).get(STEP_RECORD)
    if entry is None or entry[0] != MODE_BLOB:
        raise RecordError(f"{where} has no {STEP_RECORD}")
    return StepRecord.decode(read_object(entry[1], BLOB), where=where)
