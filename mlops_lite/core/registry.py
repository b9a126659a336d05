"""Model and artifact registries as event logs, and what a log adds up to.

A registry — one model, or one named artifact — is an ordered list of events: a
version created, a run attached, an artifact linked to a model version, a stage
set, metadata logged. Folding the list gives the registry's state: its versions
with their numbers and names, which version holds each stage, and the history of
stage changes (who, when, from which run, applied or refused).

Numbers are *proposed* by whoever creates a version and *decided* by the fold: a
number (or name) that an earlier event already took gives the version the next
free number (or the name with a ``-2`` suffix).

Logs are merged the way ``git rebase`` replays commits: ``merge_logs(theirs,
ours)`` keeps every event of ``theirs`` (what the shared remote already has) in
place and appends those of ``ours`` it lacks. The fold of a prefix never depends
on what follows it, so a version that reached the remote keeps its number and
name forever; only versions nobody else has seen can be renumbered, and
``merge_report`` says which. A replayed stage change applies as the original
call would have: with ``force`` it wins (the version it displaces is archived),
without it, it is refused if a teammate took the stage first. Both stay in the
history.

Pure functions and records only: the store keeps the logs in git.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, get_args

from mlops_lite.core.records import _Record

__all__ = [
    "ACTIONS",
    "EXCLUSIVE_STAGES",
    "LATEST",
    "LINK_KINDS",
    "STAGES",
    "RegistryEvent",
    "RegistryKind",
    "RegistryLog",
    "RegistryState",
    "StageChange",
    "VersionState",
    "fold",
    "is_version_id",
    "merge_logs",
    "merge_report",
]

RegistryKind = Literal["model", "artifact"]
Action = Literal[
    "create_version", "attach_run", "link_model", "set_stage", "log_metadata", "describe"
]
ACTIONS: Final = get_args(Action)

STAGES: Final = ("none", "staging", "production", "archived")
# At most one version per model holds each of these.
EXCLUSIVE_STAGES: Final = ("staging", "production")
# Not a stage a version can hold: it names the newest version.
LATEST: Final = "latest"
# How an artifact version is linked to a model version (ZenML's three kinds).
LINK_KINDS: Final = ("data", "model", "deployment")

_VERSION_ID = re.compile(r"[0-9a-f]{32}")
_MAX_NUMBER: Final = 2**31 - 1
_MAX_NAME: Final = 200


def is_version_id(value: object) -> bool:
    """Whether ``value`` is a version id as stored: 32 lowercase hex digits (a UUID's hex)."""
    return isinstance(value, str) and _VERSION_ID.fullmatch(value) is not None


@dataclass
class RegistryEvent(_Record):
    """One thing that happened to a registry; ``event_id`` makes it unique across clones."""

    kind: ClassVar[str] = "registry-event"
    event_id: str
    action: Action
    time: float
    author: str = ""
    version_id: str = ""
    # create_version: the number and name proposed (None: the next number, named after it).
    number: int | None = None
    name: str | None = None
    stage: str | None = None
    force: bool = False
    # The run the event came from: {"pipeline", "run"} and, for a step output, "step", "output".
    run: dict[str, str] = field(default_factory=dict)
    metadata: dict[Any, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    # An artifact version's content: the artifact tree and how it was written.
    artifact_id: str = ""
    artifact_type: str = ""
    materializer: str = ""
    materializer_version: int = 0
    type_name: str = ""
    size: int = 0
    uses_pickle: bool = False
    # xxh3-128 of the payload, checked on every load (None: saved before digests).
    digest: str | None = None
    # link_model (and create_version of an artifact made in a run with a model).
    model_name: str = ""
    model_version_id: str = ""
    link_kind: str = ""
    # describe: a model's card (license, description, audience, ...).
    card: dict[str, str] = field(default_factory=dict)


@dataclass
class RegistryLog(_Record):
    """A registry's whole history, as one stored record."""

    kind: ClassVar[str] = "registry-log"
    registry: RegistryKind
    name: str
    events: list[RegistryEvent] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The log as plain values (each event as a dict)."""
        return {
            "registry": self.registry,
            "name": self.name,
            "events": [event.to_dict() for event in self.events],
        }


@dataclass
class VersionState:
    """One version, as the events so far make it."""

    version_id: str
    number: int
    name: str
    created: float
    author: str
    run: dict[str, str]
    stage: str = "none"
    metadata: dict[Any, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    # Runs that produced or used this version (a model version: its creating run first).
    runs: list[dict[str, str]] = field(default_factory=list)
    # An artifact version's links to model versions: {"model", "version_id", "kind"}.
    links: list[dict[str, str]] = field(default_factory=list)
    event: RegistryEvent | None = None  # the create_version event (artifact facts live there)


@dataclass
class StageChange:
    """One ``set_stage`` call and what came of it."""

    event_id: str
    stage: str
    version_id: str
    time: float
    author: str
    run: dict[str, str]
    force: bool
    applied: bool
    displaced: str | None = None  # the version archived to make room
    reason: str = ""


@dataclass
class RegistryState:
    """What a registry's events add up to."""

    registry: RegistryKind
    name: str
    versions: dict[str, VersionState] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)  # exclusive stage -> version id
    history: list[StageChange] = field(default_factory=list)
    card: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # ids of events that could not apply
    _numbers: dict[int, str] = field(default_factory=dict, repr=False)
    _names: dict[str, str] = field(default_factory=dict, repr=False)

    def by_number(self, number: int) -> VersionState | None:
        """The version with this number."""
        version_id = self._numbers.get(number)
        return self.versions[version_id] if version_id is not None else None

    def by_name(self, name: str) -> VersionState | None:
        """The version with this name."""
        version_id = self._names.get(name)
        return self.versions[version_id] if version_id is not None else None

    def latest(self) -> VersionState | None:
        """The version with the highest number."""
        return self.by_number(max(self._numbers)) if self._numbers else None

    def find(self, version: str | int | None) -> VersionState | None:
        """A version by stage, ``latest``, name, number or id; None (the latest) when not given."""
        if version is None or version == LATEST:
            return self.latest()
        if isinstance(version, int) and not isinstance(version, bool):
            return self.by_number(version)
        text = str(version)
        if text in EXCLUSIVE_STAGES:
            holder = self.stages.get(text)
            return self.versions[holder] if holder is not None else None
        found = self.by_name(text)
        if found is None and text.isdigit():
            found = self.by_number(int(text))
        if found is None:
            found = self.versions.get(text.replace("-", "").lower())
        return found

    def ordered(self) -> list[VersionState]:
        """Every version, by number."""
        return [self.versions[self._numbers[number]] for number in sorted(self._numbers)]


def fold(registry: RegistryKind, name: str, events: Iterable[RegistryEvent]) -> RegistryState:
    """The state ``events`` add up to, in order; events that cannot apply are ignored."""
    state = RegistryState(registry, name)
    for event in events:
        applied = _APPLY[event.action](state, event)
        if not applied:
            state.ignored.append(event.event_id)
    return state


def _valid_name(name: object) -> bool:
    return isinstance(name, str) and 0 < len(name) <= _MAX_NAME and name.strip() == name


def _create_version(state: RegistryState, event: RegistryEvent) -> bool:
    if not is_version_id(event.version_id) or event.version_id in state.versions:
        return False
    if event.name is not None and not _valid_name(event.name):
        return False
    proposed = event.number
    if proposed is None or not 0 < proposed <= _MAX_NUMBER or proposed in state._numbers:
        number = max(state._numbers, default=0) + 1
    else:
        number = proposed
    base = event.name if event.name is not None else str(number)
    chosen, suffix = base, 2
    while chosen in state._names:
        chosen, suffix = f"{base}-{suffix}", suffix + 1
    version = VersionState(
        version_id=event.version_id,
        number=number,
        name=chosen,
        created=event.time,
        author=event.author,
        run=dict(event.run),
        metadata=dict(event.metadata),
        tags=list(dict.fromkeys(event.tags)),
        runs=[dict(event.run)] if event.run else [],
        event=event,
    )
    if event.model_name and is_version_id(event.model_version_id):
        version.links.append(_link(event))
    state.versions[event.version_id] = version
    state._numbers[number] = event.version_id
    state._names[chosen] = event.version_id
    return True


def _link(event: RegistryEvent) -> dict[str, str]:
    kind = event.link_kind if event.link_kind in LINK_KINDS else "data"
    return {"model": event.model_name, "version_id": event.model_version_id, "kind": kind}


def _attach_run(state: RegistryState, event: RegistryEvent) -> bool:
    version = state.versions.get(event.version_id)
    if version is None or not event.run:
        return False
    if event.run not in version.runs:
        version.runs.append(dict(event.run))
    return True


def _link_model(state: RegistryState, event: RegistryEvent) -> bool:
    version = state.versions.get(event.version_id)
    if version is None or not event.model_name or not is_version_id(event.model_version_id):
        return False
    link = _link(event)
    if link not in version.links:
        version.links.append(link)
    if event.run and event.run not in version.runs:
        version.runs.append(dict(event.run))
    return True


def _set_stage(state: RegistryState, event: RegistryEvent) -> bool:
    version = state.versions.get(event.version_id)
    stage = event.stage
    if version is None or stage not in STAGES:
        return False
    change = StageChange(
        event.event_id, stage, version.version_id, event.time, event.author, dict(event.run),
        event.force, applied=True,
    )  # fmt: skip
    holder = state.stages.get(stage) if stage in EXCLUSIVE_STAGES else None
    if holder is not None and holder != version.version_id:
        if not event.force:
            change.applied = False
            change.reason = (
                f"version {state.versions[holder].name} held {stage} already "
                "(set_stage without force never takes a stage from another version)"
            )
            state.history.append(change)
            return True
        state.versions[holder].stage = "archived"
        del state.stages[stage]
        change.displaced = holder
    if version.stage in EXCLUSIVE_STAGES and state.stages.get(version.stage) == version.version_id:
        del state.stages[version.stage]
    version.stage = stage
    if stage in EXCLUSIVE_STAGES:
        state.stages[stage] = version.version_id
    state.history.append(change)
    return True


def _log_metadata(state: RegistryState, event: RegistryEvent) -> bool:
    version = state.versions.get(event.version_id)
    if version is None:
        return False
    version.metadata.update(event.metadata)
    return True


def _describe(state: RegistryState, event: RegistryEvent) -> bool:
    state.card.update({key: value for key, value in event.card.items() if value})
    state.tags = list(dict.fromkeys([*state.tags, *event.tags]))
    return True


_APPLY = {
    "create_version": _create_version,
    "attach_run": _attach_run,
    "link_model": _link_model,
    "set_stage": _set_stage,
    "log_metadata": _log_metadata,
    "describe": _describe,
}


def merge_logs(theirs: list[RegistryEvent], ours: list[RegistryEvent]) -> list[RegistryEvent]:
    """``theirs`` unchanged, then the events of ``ours`` it does not have, in our order."""
    known = {event.event_id for event in theirs}
    return [*theirs, *(event for event in ours if event.event_id not in known)]


def merge_report(
    ours: RegistryState, merged: RegistryState, replayed: Iterable[RegistryEvent]
) -> list[str]:
    """What the merge changed for our replayed events, one sentence each."""
    subject = f"{merged.registry} {merged.name!r}"
    messages = []
    for event in replayed:
        if event.action == "create_version":
            before, after = (
                ours.versions.get(event.version_id),
                merged.versions.get(event.version_id),
            )
            if before is None or after is None:
                continue
            if before.number != after.number:
                messages.append(
                    f"{subject}: your version {before.number}{_made_in(before.run)} is now version "
                    f"{after.number}: a teammate's version {before.number} reached the remote first"
                )
            elif before.name != after.name:
                messages.append(
                    f"{subject}: your version named {before.name!r}{_made_in(before.run)} is now "
                    f"named {after.name!r}: a teammate's {before.name!r} reached the remote first"
                )
        elif event.action == "set_stage":
            local = next((c for c in ours.history if c.event_id == event.event_id), None)
            change = next((c for c in merged.history if c.event_id == event.event_id), None)
            if local is None or change is None:
                continue
            version = merged.versions[change.version_id].name
            if local.applied and not change.applied:
                messages.append(
                    f"{subject}: your move of version {version} to {change.stage} was not "
                    f"applied: {change.reason}; call set_stage({change.stage!r}, force=True) "
                    "to take it"
                )
            elif change.displaced is not None and change.displaced != local.displaced:
                displaced = merged.versions[change.displaced]
                messages.append(
                    f"{subject}: your move of version {version} to {change.stage} (force=True) "
                    f"replaced version {displaced.name}, which a teammate had put there; version "
                    f"{displaced.name} is now archived"
                )
    return messages


def _made_in(run: dict[str, str]) -> str:
    return f" (run {run['run']})" if run.get("run") else ""
