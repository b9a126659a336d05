"""Pulling model and artifact registries that a teammate changed while we changed ours."""

from __future__ import annotations

from mlops_lite.errors import RefConflictError
from mlops_lite.store import GitStore
from mlops_lite.store.registry import is_ancestor, merge_registry, parse_registry_ref
from mlops_lite.store.transport.remote_refs import remote_ref_values
from mlops_lite.store.transport.result import Implementation, TransferResult

__all__ = ["merge_diverged_registries"]


def merge_diverged_registries(
    start_dir: str, remote: str, result: TransferResult, implementation: Implementation
) -> list[str]:
    """Merge each registry ref the pull refused to move; what the merges changed, in words.

    A merged ref leaves ``result.rejected`` for ``result.merged``; one whose remote
    value is already ours (we are ahead) for ``result.unchanged``. A ref that moved
    while we merged stays rejected: pulling again merges it.
    """
    names = sorted(name for name in result.rejected if parse_registry_ref(name) is not None)
    if not names:
        return []
    theirs = remote_ref_values(start_dir, remote, names, implementation=implementation)
    messages: list[str] = []
    with GitStore.open(start_dir) as store:
        for name in names:
            remote_head, local_head = theirs.get(name), store.refs.read(name)
            if remote_head is None or local_head is None or not store.has_object(remote_head):
                continue
            if is_ancestor(store, remote_head, local_head):
                del result.rejected[name]
                result.unchanged.append(name)
                continue
            try:
                _, report = merge_registry(store, name, local_head, remote_head)
            except RefConflictError:
                continue
            del result.rejected[name]
            result.merged.append(name)
            messages += report
    return messages
