"""Names for the kinds of ids mlops_lite handles, so one kind is never passed for another."""

from __future__ import annotations

from typing import TYPE_CHECKING, NewType

if TYPE_CHECKING:
    import uuid

__all__ = ["ArtifactId", "CacheKey", "CommitId", "ObjectId", "RefName", "stable_uuid"]

ObjectId = NewType("ObjectId", str)
"""The hex SHA-1 of any git object."""

CommitId = NewType("CommitId", str)
"""The hex SHA-1 of a git commit: a run, a code pin, a metadata state."""

ArtifactId = NewType("ArtifactId", str)
"""The hex SHA-1 of an artifact's git tree: the same value has the same id everywhere."""

CacheKey = NewType("CacheKey", str)
"""The xxh3-128 hex digest under which a step execution's outputs are reused."""

RefName = NewType("RefName", str)
"""A full git ref name, such as ``refs/mlops/runs/training/20261123-114844-123456-3f9a``."""


# Fixed, so that the same names give the same UUID in every process and clone.
_NAMESPACE = "6f1d2a8e-5b0c-4f7a-9c3e-2d9b8a7c6e51"


def stable_uuid(*parts: str) -> uuid.UUID:
    """A UUID derived from names (a run's ref, a step): ZenML-style ``.id`` for things git names."""
    import uuid

    return uuid.uuid5(uuid.UUID(_NAMESPACE), "\x00".join(parts))
