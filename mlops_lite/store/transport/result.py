"""What a push or pull reports (`TransferResult`), and which of a remote's refs a pull takes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlops_lite.store.layout import METADATA_PREFIX, RUNS_PREFIX, is_shareable_ref
from mlops_lite.store.refs import is_sha

__all__ = [
    "INVALID_NAME",
    "RUN_EXISTS",
    "Direction",
    "FetchReport",
    "Implementation",
    "TransferResult",
    "merge_diverged_metadata",
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
    # refs both sides had changed, joined locally by a pull with a merge commit: run
    # metadata chains (by the transport) and model/artifact registries (registry_sync)
    merged: list[str] = field(default_factory=list)
    # refs deleted: on the remote by a push (runs deleted for the team, refs an archive
    # covers), here by a pull (runs a teammate deleted)
    deleted: list[str] = field(default_factory=list)
    # refs a push would have deleted on the remote but left, because they moved there
    kept: dict[str, str] = field(default_factory=dict)
    # runs that arrived inside archives (``refs/mlops/archive/``) rather than as refs
    archived_runs: int = 0
    transferred_objects: int | None = None
    transferred_bytes: int | None = None
    elapsed_seconds: float = 0.0
    # A pull's plan: each ref taken from the remote's listing, with the value listed.
    # What merging a ref the fetch refused starts from; not part of the report.
    advertised: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def runs(self) -> int:
        """How many runs this transfer brought or sent: run refs created or moved, and archived."""
        refs = sum(name.startswith(RUNS_PREFIX) for name in self.created + self.updated)
        return refs + self.archived_runs

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (used by `--json`)."""
        report = asdict(self)
        del report["advertised"]
        return {**report, "runs": self.runs}


@dataclass
class FetchReport:
    """What one fetch of chosen refs did: refs refused, and what travelled."""

    rejected: dict[str, str] = field(default_factory=dict)
    objects: int | None = None
    bytes: int | None = None


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


def merge_diverged_metadata(start_dir: str, theirs: dict[str, str], result: TransferResult) -> None:
    """Join each metadata ref the pull refused as diverged with the remote's chain.

    A refused run ref stays refused (runs are write-once); a metadata chain that
    diverged is merged (``annotations.merge_annotations``) and reported in
    ``result.merged``. One whose remote state is unreadable stays refused.
    """
    candidates = [
        name for name in result.rejected if name.startswith(METADATA_PREFIX) and name in theirs
    ]
    if not candidates:
        return
    from mlops_lite.store.annotations import merge_annotations
    from mlops_lite.store.repository import GitStore

    with GitStore.open(start_dir) as store:
        for name in candidates:
            if merge_annotations(store, name, theirs[name]):
                del result.rejected[name]
                result.merged.append(name)
