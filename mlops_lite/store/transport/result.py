"""What a push or pull reports (`TransferResult`), and which of a remote's refs a pull takes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlops_lite.store.layout import RUNS_PREFIX, is_shareable_ref
from mlops_lite.store.refs import is_sha

__all__ = [
    "INVALID_NAME",
    "RUN_EXISTS",
    "Direction",
    "Implementation",
    "TransferResult",
    "plan_pull",
]

RUN_EXISTS = (
    "a different run under this name is already here: runs are never overwritten, "
    "not even by a fast-forward"
)
INVALID_NAME = "not a valid mlops-lite ref name: refused"


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


def plan_pull(
    theirs: dict[str, str], ours: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """``(refs to take, refused {name: reason})`` of a remote's ``refs/mlops/*`` advertisement.

    A name that is not a well-formed mlops-lite ref (``../``, over-long, a run
    ref of the wrong shape) is refused before it can become a path; a run ref
    we already have with another value is a conflict, never an update: runs are
    write-once. Other refs (metadata, stages) may fast-forward, as git decides.
    """
    take: dict[str, str] = {}
    refused: dict[str, str] = {}
    for name, sha in theirs.items():
        if not is_shareable_ref(name) or not is_sha(sha):
            refused[name] = INVALID_NAME
        elif name.startswith(RUNS_PREFIX) and ours.get(name, sha) != sha:
            refused[name] = RUN_EXISTS
        else:
            take[name] = sha
    return take, refused
