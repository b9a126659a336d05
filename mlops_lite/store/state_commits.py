"""State commits: a ref whose commits each hold one file, the whole state, moved by CAS.

Run metadata added later (``annotations``) and the team ledgers (``ledgers``)
are kept this way: each commit's tree holds a single msgpack file, its parents
are the states it was made from (two for a merge of a teammate's chain).
"""

from __future__ import annotations

import time

from mlops_lite.errors import RefConflictError
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import utc_offset_minutes
from mlops_lite.store.objects import MODE_BLOB, blob, commit, tree

__all__ = ["commit_state"]


def commit_state(
    store: Store, ref: str, filename: str, data: bytes, parents: list[str], message: str
) -> bool:
    """Move ``ref`` from ``parents[0]`` to a new commit of ``data``; False if it moved meanwhile.

    The commit's objects are written under a keep released once the ref has
    moved (or not): git's maintenance cannot drop them in between.
    """
    state_blob = blob(data)
    state_tree = tree({filename: (MODE_BLOB, state_blob.id)})
    now = time.time()
    new = commit(
        tree_id=state_tree.id,
        parents=parents,
        author=store.identity,
        timestamp=now,
        tz_offset_minutes=utc_offset_minutes(now),
        message=message,
    )
    keep = store.write_objects([state_blob, state_tree, new], ref=ref)
    try:
        store.refs.compare_and_swap(ref, parents[0] if parents else None, new.id)
        return True
    except RefConflictError:
        return False
    finally:
        keep.release()
