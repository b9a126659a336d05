"""Names for the kinds of ids mlops_lite handles, so one kind is never passed for another."""

from __future__ import annotations

from typing import NewType

__all__ = ["ArtifactId", "CacheKey", "CommitId", "ObjectId", "RefName"]

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
