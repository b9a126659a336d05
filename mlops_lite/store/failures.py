"""One-line ``StoreError``s for failures of the disk and for damaged objects, saying what to do."""

from __future__ import annotations

import errno

from mlops_lite.errors import StoreError

__all__ = ["damaged_object_error", "is_read_only_error", "store_os_error"]

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def is_read_only_error(error: OSError) -> bool:
    """Whether ``error`` says the place cannot be written at all (permissions, read-only mount)."""
    return error.errno in _READ_ONLY


def store_os_error(action: str, error: OSError) -> StoreError:
    """A ``StoreError`` for ``action`` (``"write the run's objects to /repo"``) that failed.

    The message is one line and names the remedy; what was already recorded is
    untouched, because every write goes to a temporary file first.
    """
    reason = error.strerror or str(error)
    if error.errno in _FULL:
        advice = "free some disk space (or raise the quota) and run it again"
    elif error.errno in _READ_ONLY:
        advice = (
            "this repository cannot be written here (read-only mount or permissions): "
            "record runs in a writable clone"
        )
    else:
        advice = "check the disk and the repository's permissions"
    return StoreError(f"cannot {action}: {reason}; {advice} (nothing recorded before was changed)")


def damaged_object_error(root: str, object_id: str, cause: str) -> StoreError:
    """The error for an object whose stored bytes are damaged (``cause`` says how)."""
    detail = " ".join(cause.split())[:200]
    return StoreError(
        f"git object {object_id} is damaged in {root} ({detail}); "
        "run `mlops-lite fsck` to see which runs it affects, then fetch them again from a "
        "clone that has them (`mlops-lite pull`) or rerun the pipeline"
    )
