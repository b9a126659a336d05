"""What the client's registry views share: reading a registry's state, and its pages.

A registry that cannot be read (a damaged log pulled from a teammate) is left
out of listings, so one bad registry hides no other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from mlops_lite.core.registry import EXCLUSIVE_STAGES, RegistryState, VersionState
from mlops_lite.errors import RecordError
from mlops_lite.store.registry import read_registry, registry_names

if TYPE_CHECKING:
    from mlops_lite.client.client import Client

__all__ = [
    "Page",
    "VersionView",
    "missing_version",
    "readable_state",
    "readable_states",
    "run_ref_name",
]

T = TypeVar("T")


class Page(list[T], Generic[T]):
    """A list of results, with ZenML's page attributes (everything is on one page)."""

    @property
    def items(self) -> list[T]:
        """The results."""
        return list(self)

    @property
    def total(self) -> int:
        """How many results there are."""
        return len(self)

    @property
    def size(self) -> int:
        """How many results this page holds (all of them)."""
        return len(self)


class VersionView:
    """What a model version and an artifact version share: identity, number, who, when."""

    def __init__(self, client: Client, state: RegistryState, version: VersionState) -> None:
        self._client = client
        self._state = state
        self._version = version

    @property
    def id(self) -> uuid.UUID:
        """The version's id (unique in every clone)."""
        return uuid.UUID(self._version.version_id)

    @property
    def number(self) -> int:
        """The version's number."""
        return self._version.number

    @property
    def created(self) -> float:
        """When it was created (seconds since the epoch)."""
        return self._version.created

    @property
    def author(self) -> str:
        """The e-mail of whoever created it."""
        return self._version.author

    @property
    def run_metadata(self) -> dict[str, Any]:
        """Metadata logged on this version (its config's ``run_metadata``, ``log_metadata``)."""
        return dict(self._version.metadata)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.id == self.id  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.id)


def run_ref_name(run: dict[str, str]) -> str | None:
    """``pipeline/run`` of a registry event's run, or None (saved outside a run)."""
    return f"{run['pipeline']}/{run['run']}" if run.get("pipeline") and run.get("run") else None


def readable_state(client: Client, kind: Any, name: str) -> RegistryState | None:
    """The registry's state, or None when it has none or it is unreadable."""
    try:
        return read_registry(client._store, kind, name)
    except RecordError:
        return None


def readable_states(client: Client, kind: Any) -> Iterable[RegistryState]:
    """Every readable registry of a kind, by name."""
    for name in registry_names(client._store, kind):
        state = readable_state(client, kind, name)
        if state is not None:
            yield state


def missing_version(state: RegistryState, version: Any) -> str:
    """Why ``version`` names no version of the registry, and what there is instead."""
    known = ", ".join(v.name for v in state.ordered()[-10:]) or "none"
    stages = ", ".join(f"{s}: {state.versions[v].name}" for s, v in state.stages.items())
    if version is not None and str(version) in EXCLUSIVE_STAGES:
        return (
            f"no version of {state.registry} {state.name!r} is in stage {version} "
            f"(stages: {stages or 'none held'}); promote one with set_stage({str(version)!r})"
        )
    return f"{state.registry} {state.name!r} has no version {version} (versions: {known})"
