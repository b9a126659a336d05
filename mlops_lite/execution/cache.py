"""The step cache: whether a step may reuse an earlier execution, its key, and finding a hit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_lite.core.hashing import cache_key
from mlops_lite.core.ids import CacheKey
from mlops_lite.definition.fingerprint import code_fingerprint
from mlops_lite.definition.steps import Step
from mlops_lite.errors import MlopsLiteError
from mlops_lite.materializers import loading_unpickles, materializer_for_type
from mlops_lite.store.artifacts import read_artifact_meta
from mlops_lite.store.index import CacheHit, RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.trust import run_trust

__all__ = ["cache_enabled", "find_cache_hit", "step_cache_key"]


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
    step: Step, parameters: Mapping[str, Any], input_artifacts: Mapping[str, str]
) -> tuple[CacheKey, str]:
    """``(cache key, code fingerprint)`` of one invocation."""
    fingerprint = code_fingerprint(step.entrypoint)
    key = cache_key(
        code_fingerprint=fingerprint,
        parameters=parameters,
        input_artifacts=input_artifacts,
        materializers=_declared_materializers(step),
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


def find_cache_hit(index: RunIndex, store: Store, key: CacheKey) -> CacheHit | None:
    """The earliest usable execution with this key, or None.

    A hit is usable when every artifact it names is really in the store (the
    index is derived and may be ahead of the objects), and loading them would
    not unpickle bytes from a run that is not trusted here (``store.trust``):
    asked of each artifact's own ``meta``, never of the record's flags. An
    untrusted hit is passed over, so the step runs here instead.
    """
    for hit in index.cache_hits(key):
        if _usable(store, hit):
            return hit
    return None


def _usable(store: Store, hit: CacheHit) -> bool:
    # Most hits are this clone's own runs: trusted whatever they hold, so only
    # their presence is checked, as before trust was asked (no meta read).
    if hit.sha is not None and run_trust(store, hit.sha, signatures=False):
        return all(store.has_object(output.artifact_id) for output in hit.outputs.values())
    needs_trust = False
    for output in hit.outputs.values():
        try:
            meta = read_artifact_meta(store.read_object, output.artifact_id)
        except MlopsLiteError:
            return False  # absent or not an artifact: the step runs again
        needs_trust = needs_trust or loading_unpickles(meta.materializer)
    return not needs_trust or (hit.sha is not None and bool(run_trust(store, hit.sha)))
