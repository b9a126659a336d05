"""``ArtifactConfig``: name, version, tags and kind of a step output, ZenML's way.

``-> Annotated[Model, ArtifactConfig(name="classifier", is_model_artifact=True)]``
names the output ``classifier`` and makes each execution of the step a new
version of the artifact ``classifier`` (a cache hit reuses the version it hit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_lite.core.names import NAME_RULE, is_valid_name
from mlops_lite.core.values import is_recordable
from mlops_lite.enums import ArtifactType
from mlops_lite.errors import DefinitionError

__all__ = ["ArtifactConfig"]


@dataclass(frozen=True)
class ArtifactConfig:
    """How a step output is kept as a named, versioned artifact.

    ``name`` (default: the pipeline, step and output names joined by dots),
    ``version`` (default: the next number), ``tags``, ``run_metadata`` (logged on
    the version), ``artifact_type`` (an ``ArtifactType``), and how it is linked to
    the run's model version: ``is_model_artifact`` / ``is_deployment_artifact``
    (otherwise a data artifact, unless ``artifact_type`` says ``ModelArtifact``).
    """

    name: str | None = None
    version: str | int | None = None
    tags: Sequence[str] = ()
    run_metadata: Mapping[str, Any] = field(default_factory=dict)
    artifact_type: str | None = None
    is_model_artifact: bool = False
    is_deployment_artifact: bool = False

    def __post_init__(self) -> None:
        if self.name is not None and not is_valid_name(self.name):
            raise DefinitionError(
                f"ArtifactConfig(name={self.name!r}): an artifact name is part of a git ref; "
                f"use {NAME_RULE}"
            )
        if self.version is not None and not (
            isinstance(self.version, (str, int)) and str(self.version).strip()
        ):
            raise DefinitionError(
                f"ArtifactConfig(version={self.version!r}): give a string or a number"
            )
        if isinstance(self.tags, str) or not all(isinstance(tag, str) for tag in self.tags):
            raise DefinitionError(f"ArtifactConfig(tags={self.tags!r}): give a list of strings")
        if not is_recordable(dict(self.run_metadata)):
            raise DefinitionError(
                "ArtifactConfig(run_metadata=...): metadata must be JSON-like (numbers, "
                "strings, lists, dicts)"
            )
        if self.artifact_type is not None and self.artifact_type not in set(ArtifactType):
            raise DefinitionError(
                f"ArtifactConfig(artifact_type={self.artifact_type!r}): use an ArtifactType "
                f"({', '.join(kind.name for kind in ArtifactType)})"
            )
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "run_metadata", dict(self.run_metadata))

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.tags, self.artifact_type))

    @property
    def link_kind(self) -> str:
        """How the version is linked to a model version: ``model``, ``deployment`` or ``data``."""
        if self.is_model_artifact or self.artifact_type == ArtifactType.MODEL:
            return "model"
        if self.is_deployment_artifact or self.artifact_type == ArtifactType.SERVICE:
            return "deployment"
        return "data"
