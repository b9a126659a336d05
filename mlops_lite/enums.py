"""ZenML's enumerations under their ZenML names: ``from mlops_lite.enums import ModelStages``.

Each is a ``StrEnum`` whose values are ZenML's strings, so a member compares
equal to the plain string mlops_lite stores (``run.status == ExecutionStatus.COMPLETED``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ArtifactType", "ExecutionStatus", "ModelStages", "VisualizationType"]


class ModelStages(StrEnum):
    """Stages of a model version. ``latest`` is virtual: it names the newest version."""

    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    LATEST = "latest"


class ExecutionStatus(StrEnum):
    """Statuses of runs and steps (mlops_lite also has ``crashed``, ``skipped``, ``cancelled``)."""

    INITIALIZING = "initializing"
    RUNNING = "running"
    COMPLETED = "completed"
    CACHED = "cached"
    FAILED = "failed"
    STOPPED = "stopped"


class ArtifactType(StrEnum):
    """What an artifact version holds; decides how it is linked to a model version."""

    DATA_ANALYSIS = "DataAnalysisArtifact"
    DATA = "DataArtifact"
    MODEL = "ModelArtifact"
    SCHEMA = "SchemaArtifact"
    SERVICE = "ServiceArtifact"
    STATISTICS = "StatisticsArtifact"
    BASE = "BaseArtifact"


class VisualizationType(StrEnum):
    """Accepted from ZenML materializers' ``save_visualizations``; mlops_lite shows none."""

    CSV = "csv"
    HTML = "html"
    IMAGE = "image"
    MARKDOWN = "markdown"
    JSON = "json"
