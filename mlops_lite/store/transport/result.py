"""What a push or pull reports (`TransferResult`) and the ref names it moves."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlops_lite.store.layout import RUNS_PREFIX

__all__ = ["Direction", "Implementation", "TransferResult"]


Implementation = Literal["git", "dulwich"]
Direction = Literal["push", "pull"]


@dataclass
class TransferResult:
    """What one push or pull did; ref names are full (`refs/mlops/...`)."""

    direction: Direction
    remote: str
    transport: Implementation
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # ref -> why it was refused (non-fast-forward, hook declined, ...); nothing is forced
    rejected: dict[str, str] = field(default_factory=dict)
    # Model and artifact registries both sides had changed, merged locally by a pull.
    merged: list[str] = field(default_factory=list)
    transferred_objects: int | None = None
    transferred_bytes: int | None = None
    elapsed_seconds: float = 0.0

    @property
    def runs(self) -> int:
        """How many run refs this transfer created or moved."""
        return sum(name.startswith(RUNS_PREFIX) for name in self.created + self.updated)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (used by `--json`)."""
        return {**asdict(self), "runs": self.runs}
