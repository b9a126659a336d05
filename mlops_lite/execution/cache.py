"""The step cache: whether a step may reuse an earlier execution, its key, and finding a hit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_lite.core.hashing import cache_key
from mlops_lite.core.ids import CacheKey
from mlops_lite.definition.fingerprint import code_fingerprint
from mlops_lite.definition.steps import Step
from mlops_lite.materializers import materializer_for_type
from mlops_lite.store.artifacts import artifact_present
from mlops_lite.store.index import CacheHit, RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.trust import pickle_trusted

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

    A hit is usable when loading it would not unpickle a teammate's bytes the
    user has not trusted, and every object of every artifact it names is really
    in the store (the index is derived and may be ahead of the objects; blobs
    may have been lost).
    """
    own = store.identity.email
    for hit in index.cache_hits(key):
        if any(output.uses_pickle for output in hit.outputs.values()) and not pickle_trusted(
            hit.author, own
        ):
            continue
        if all(
            artifact_present(store.read_object, store.has_object, output.artifact_id)
            for output in hit.outputs.values()
        ):
            return hit
    return None
