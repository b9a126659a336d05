"""Pulling model and artifact registries that a teammate changed while we changed ours."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_lite.errors import MlopsLiteError, RefConflictError
from mlops_lite.store import GitStore

if TYPE_CHECKING:
    from mlops_lite.store.transport.result import TransferResult

__all__ = ["merge_diverged_registries"]


def merge_diverged_registries(start_dir: str, result: TransferResult) -> list[str]:
    """Merge each registry ref the pull refused to move; what the merges changed, in words.

    The remote's value is the one the transport planned the pull from
    (``result.advertised``): git and dulwich both fetch a ref's objects before
    refusing to move it, so they are here. A merged ref leaves ``result.rejected``
    for ``result.merged``; one whose remote value is already ours (we are ahead)
    for ``result.unchanged``. A ref that moved while we merged stays rejected
    (pulling again merges it), and so does one whose remote chain cannot be read,
    with the reason.
    """
    if not result.rejected:
        return []  # the usual pull: the registry code is not even imported
    from mlops_lite.store.registry import is_ancestor, merge_registry, parse_registry_ref

    names = sorted(
        name
        for name in result.rejected
        if name in result.advertised and parse_registry_ref(name) is not None
    )
    if not names:
        return []
    messages: list[str] = []
    with GitStore.open(start_dir) as store:
        for name in names:
            remote_head, local_head = result.advertised[name], store.refs.read(name)
            if local_head is None or not store.has_object(remote_head):
                continue
            try:
                if is_ancestor(store, remote_head, local_head):
                    del result.rejected[name]
                    result.unchanged.append(name)
                    continue
                _, report = merge_registry(store, name, local_head, remote_head)
            except RefConflictError:
                continue
            except MlopsLiteError as error:
                result.rejected[name] += f"; the remote's registry cannot be merged: {error}"
                continue
            del result.rejected[name]
            result.merged.append(name)
            messages += report
    return messages
