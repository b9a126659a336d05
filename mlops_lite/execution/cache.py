"""The step cache: whether a step may reuse an earlier execution, its key, and finding a hit."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_lite.core.hashing import cache_key
from mlops_lite.core.ids import CacheKey
from mlops_lite.core.records import OutputRecord
from mlops_lite.core.status import FINISHED_STEP_STATUSES
from mlops_lite.definition.fingerprint import code_fingerprint
from mlops_lite.definition.steps import Step
from mlops_lite.errors import MlopsLiteError
from mlops_lite.execution.data_files import changed_files
from mlops_lite.materializers import loading_unpickles, materializer_for_type
from mlops_lite.store.artifacts import artifact_present, read_artifact_meta
from mlops_lite.store.index import CacheHit, RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import RunCommit, read_run_commit, read_step_record
from mlops_lite.store.trust import run_trust

__all__ = ["CacheLookup", "ReusedExecution", "cache_enabled", "step_cache_key"]

# A run commit never changes (it is named by its content): a process that runs
# pipelines again and again (a notebook, a sweep) decodes the run it reuses once.
_RUNS_KEPT = 16
_runs_read: OrderedDict[str, RunCommit] = OrderedDict()
_runs_lock = threading.Lock()


def cache_enabled(*, pipeline: bool, step: bool | None, override: bool | None) -> bool:
    """Whether a step uses the cache: the one place this is decided.

    ``override`` (``MLOPS_LITE_ENABLE_CACHE``, set by ``rerun``) wins over
    everything, the step's own setting (decorator, ``with_options`` or the
    configuration file) over the pipeline's.
    """
    if override is not None:
        return override
    if step is not None:
        return step
    return pipeline


def step_cache_key(
    step: Step,
    parameters: Mapping[str, Any],
    input_artifacts: Mapping[str, str],
    declared_data: Mapping[str, str] | None = None,
) -> tuple[CacheKey, str]:
    """``(cache key, code fingerprint)`` of one invocation."""
    fingerprint = code_fingerprint(step.entrypoint)
    key = cache_key(
        code_fingerprint=fingerprint,
        parameters=parameters,
        input_artifacts=input_artifacts,
        materializers=_declared_materializers(step),
        data_files=declared_data,
    )
    return key, fingerprint


def _declared_materializers(step: Step) -> dict[str, str]:
    declared = {}
    for output in step.outputs:
        chosen = step.options.output_materializers.get(output.name)
        if chosen is None:
            chosen = materializer_for_type(output.annotation)
        declared[output.name] = (
            f"{chosen.name}@{chosen.version}" if chosen is not None else "dynamic"
        )
    return declared


@dataclass(frozen=True)
class ReusedExecution:
    """A usable cache hit and what the execution it reuses recorded."""

    hit: CacheHit
    outputs: dict[str, OutputRecord]
    metadata: dict[Any, Any]
    data_files: dict[str, str]
    # The run and step that really executed (a reused step's own origin, if it was one).
    origin: dict[str, str]


class CacheLookup:
    """Finds usable cache hits for the steps of one run; reads each earlier run once."""

    def __init__(self, index: RunIndex, store: Store, data_root: str) -> None:
        self.index = index
        self.store = store
        self.data_root = data_root
        self._runs: dict[str, RunCommit | None] = {}

    def find(self, key: CacheKey) -> ReusedExecution | None:
        """The earliest usable execution with this key, or None.

        A hit is usable when every object of every artifact it names is really in
        the store (the index is derived and may be ahead of the objects; blobs may
        have been lost), loading them would not unpickle bytes from a run that is
        not trusted here (``store.trust``): asked of each artifact's own ``meta``,
        never of the record's flags; and every data file the execution read still
        holds the content it read. An unusable hit is passed over, so the step
        runs here instead.
        """
        for hit in self.index.cache_hits(key):
            reused = self._execution(hit, key)
            if reused is None or not _usable(self.store, hit, reused.outputs):
                continue
            if changed_files(self.data_root, reused.data_files):
                continue
            return reused
        return None

    def _execution(self, hit: CacheHit, key: CacheKey) -> ReusedExecution | None:
        """What the hit's run recorded about the step: its summary, else its own record.

        Read from the run commit the index names, whatever holds it now (its own
        ref or an archive). The index only says where to look: the record must
        agree that this step finished with this key.
        """
        run = self._run(hit.sha)
        if run is None:
            return None
        own_origin = {"pipeline": hit.pipeline, "run": hit.run_name, "step": hit.step}
        summary = run.record.step_summary.get(hit.step)
        if summary is not None and summary.data_files is not None:
            if summary.cache_key != key or summary.status not in FINISHED_STEP_STATUSES:
                return None
            origin = summary.cached_from or own_origin
            return ReusedExecution(
                hit, dict(summary.outputs), summary.metadata, summary.data_files, origin
            )
        # A run recorded before summaries held these: read the step's record.
        tree = run.steps.get(hit.step)
        if tree is None:
            return None
        try:
            record = read_step_record(self.store.read_object, tree, where=f"step {hit.step}")
        except MlopsLiteError:
            return None
        if record.cache_key != key or record.status not in FINISHED_STEP_STATUSES:
            return None
        origin = record.cached_from if record.cached and record.cached_from else own_origin
        outputs = dict(record.outputs)
        return ReusedExecution(hit, outputs, record.metadata, record.data_files, origin)

    def _run(self, sha: str) -> RunCommit | None:
        if sha not in self._runs:
            self._runs[sha] = _read_run(self.store, sha)
        return self._runs[sha]


def _read_run(store: Store, sha: str) -> RunCommit | None:
    """The run commit ``sha``, decoded once per process; None when unreadable here.

    An unreadable run is not remembered beyond one lookup: its objects may
    arrive with the next pull.
    """
    with _runs_lock:
        run = _runs_read.get(sha)
        if run is not None:
            _runs_read.move_to_end(sha)
            return run
    try:
        run = read_run_commit(store.read_object, sha)
    except MlopsLiteError:
        return None
    with _runs_lock:
        _runs_read[sha] = run
        if len(_runs_read) > _RUNS_KEPT:
            _runs_read.popitem(last=False)
    return run


def _usable(store: Store, hit: CacheHit, outputs: dict[str, OutputRecord]) -> bool:
    if not all(
        artifact_present(store.read_object, store.has_object, output.artifact_id)
        for output in outputs.values()
    ):
        return False
    # Most hits are this clone's own runs: trusted whatever they hold, so their
    # presence is all that is checked (no meta read).
    if run_trust(store, hit.sha, signatures=False):
        return True
    needs_trust = False
    for output in outputs.values():
        try:
            meta = read_artifact_meta(store.read_object, output.artifact_id)
        except MlopsLiteError:
            return False  # absent or not an artifact: the step runs again
        needs_trust = needs_trust or loading_unpickles(meta.materializer)
    return not needs_trust or bool(run_trust(store, hit.sha))
