"""Naming an artifact version that a step receives as an input, before the run starts.

Inside a ``@pipeline`` body, ``Client().get_artifact_version("data")`` or
``get_pipeline_context().model.get_artifact("model")`` stand for an artifact
version. Passed to a step, they become an *input edge* (recorded as lineage,
keyed in the cache by artifact id), never a parameter. An ``ArtifactSelector``
says which version; the run resolves it when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ArtifactSelector", "selector_of"]


@dataclass(frozen=True)
class ArtifactSelector:
    """Which artifact version a step argument stands for; resolved when the run starts.

    Either an exact ``version_id``; or an ``artifact_name`` with an optional
    ``version`` (name or number; None: the latest); or an artifact linked to a
    model version: ``model_name`` with ``model_version`` (name, number or stage),
    or ``from_run_model`` for the version the run itself works on. ``link_kind``
    narrows a model's artifacts to ``model``, ``data`` or ``deployment`` ones.
    """

    artifact_name: str | None = None
    version: str | None = None
    version_id: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    from_run_model: bool = False
    link_kind: str | None = None

    def describe(self) -> str:
        """The selector in words, for error messages."""
        if self.version_id is not None and self.artifact_name is None:
            return f"artifact version {self.version_id}"
        what = f"artifact {self.artifact_name!r}"
        if self.version is not None:
            what += f" version {self.version}"
        if self.from_run_model:
            what += " of this run's model version"
        elif self.model_name is not None:
            what += f" of model {self.model_name!r} version {self.model_version or 'latest'}"
        return what


def selector_of(value: Any) -> ArtifactSelector | None:
    """The selector ``value`` stands for: itself, or what its ``_artifact_selector_()`` gives."""
    if isinstance(value, ArtifactSelector):
        return value
    method = getattr(type(value), "_artifact_selector_", None)
    if method is None:
        return None
    selector = method(value)
    return selector if isinstance(selector, ArtifactSelector) else None
