"""The model and artifact registries in git: one commit chain per model, one per artifact name.

Refs::

    refs/mlops/models/<model>          the model's events: versions, runs, stages, metadata
    refs/mlops/artifacts/<artifact>    the artifact's events, and the trees of its versions

Each commit's tree holds ``log.msgpack`` (the whole ``RegistryLog``) and, for an
artifact, ``versions/<version id>``: the artifact tree of that version. The chain
keeps its artifacts reachable, so pushing it pushes them and ``git gc`` keeps them.

Writers append events and move the ref by compare-and-swap, merging over a
concurrent writer (``append_events``). Each commit is written in one pack with
what it needs, under a ``.keep`` (``keeps.py``) released once the ref has moved:
git's maintenance cannot drop a version's artifact before the chain reaches it.
These refs are written by several people: two clones that wrote offline are
reconciled by ``merge_registry`` at pull — a commit whose parents are both heads
and whose log is ``merge_logs(theirs, ours)`` — so the shared remote only ever
fast-forwards. Nothing is forced.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from mlops_lite.core.hashing import content_digest
from mlops_lite.core.names import is_valid_name
from mlops_lite.core.records import OutputRecord
from mlops_lite.core.registry import (
    EXCLUSIVE_STAGES,
    LATEST,
    STAGES,
    RegistryEvent,
    RegistryKind,
    RegistryLog,
    RegistryState,
    fold,
    is_version_id,
    merge_logs,
    merge_report,
)
from mlops_lite.core.secrets import scrub_value
from mlops_lite.errors import (
    ArtifactVersionNotFoundError,
    ModelStageError,
    ModelVersionNotFoundError,
    RecordError,
    RefConflictError,
)
from mlops_lite.store.artifacts import build_artifact
from mlops_lite.store.interface import Store
from mlops_lite.store.keeps import Keep
from mlops_lite.store.layout import utc_offset_minutes
from mlops_lite.store.objects import (
    BLOB,
    COMMIT,
    MODE_BLOB,
    MODE_TREE,
    TREE,
    GitObject,
    blob,
    commit,
    parse_commit,
    parse_tree,
    tree,
)
from mlops_lite.store.provenance import remember_recorded

__all__ = [
    "ARTIFACTS_PREFIX",
    "MODELS_PREFIX",
    "append_events",
    "build_output",
    "introducing_commit",
    "is_ancestor",
    "log_version_metadata",
    "merge_registry",
    "new_event",
    "parse_registry_ref",
    "read_registry",
    "registry_names",
    "registry_ref",
    "save_artifact_version",
    "set_stage",
]

MODELS_PREFIX: Final = "refs/mlops/models/"
ARTIFACTS_PREFIX: Final = "refs/mlops/artifacts/"
_PREFIXES: Final[dict[RegistryKind, str]] = {"model": MODELS_PREFIX, "artifact": ARTIFACTS_PREFIX}
_LOG: Final = "log.msgpack"
_VERSIONS: Final = "versions"
# A registry log arrives from teammates: refuse one too large to be honest.
_MAX_LOG_BYTES: Final = 64 * 1024 * 1024
_ATTEMPTS: Final = 50

# Decoded commits and folded states by commit id: a commit never changes, so neither
# do they. A driver appending a version per step then reads nothing it wrote itself.
_COMMITS: OrderedDict[str, tuple[RegistryLog, dict[str, tuple[int, str]]]] = OrderedDict()
_STATES: OrderedDict[str, RegistryState] = OrderedDict()
_CACHED: Final = 256


def _remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > _CACHED:
        cache.popitem(last=False)


def registry_ref(kind: RegistryKind, name: str) -> str:
    """The ref of a model's or an artifact's registry."""
    return _PREFIXES[kind] + name


def parse_registry_ref(ref: str) -> tuple[RegistryKind, str] | None:
    """``(kind, name)`` of a registry ref, else None."""
    for kind, prefix in _PREFIXES.items():
        if ref.startswith(prefix):
            name = ref.removeprefix(prefix)
            return (kind, name) if is_valid_name(name) else None
    return None


def registry_names(store: Store, kind: RegistryKind) -> list[str]:
    """Every model (or artifact) with a registry here, sorted."""
    prefix = _PREFIXES[kind]
    return sorted(
        name
        for name in (ref.removeprefix(prefix) for ref in store.refs.list(prefix))
        if is_valid_name(name)
    )


def new_event(store: Store, action: str, **fields: Any) -> RegistryEvent:
    """An event by this repository's user, now, with a fresh id (secrets scrubbed from metadata)."""
    if fields.get("metadata"):
        fields["metadata"] = scrub_value(fields["metadata"])
    return RegistryEvent(
        event_id=uuid.uuid4().hex,
        action=action,  # type: ignore[arg-type]
        time=time.time(),
        author=store.identity.email,
        **fields,
    )


def read_registry(store: Store, kind: RegistryKind, name: str) -> RegistryState | None:
    """The registry's state at its ref, or None when it has none."""
    head = store.refs.read(registry_ref(kind, name))
    return None if head is None else _state_at(store, kind, name, head)


def _state_at(store: Store, kind: RegistryKind, name: str, head: str) -> RegistryState:
    cached = _STATES.get(head)
    if cached is not None and cached.registry == kind and cached.name == name:
        _STATES.move_to_end(head)
        return cached
    log, _ = _read_commit(store, kind, name, head)
    state = fold(kind, name, log.events)
    _remember(_STATES, head, state)
    return state


def _read_commit(
    store: Store, kind: RegistryKind, name: str, head: str
) -> tuple[RegistryLog, dict[str, tuple[int, str]]]:
    """The log and the ``versions`` entries of a registry commit, checked (a fresh dict)."""
    cached = _COMMITS.get(head)
    if cached is not None and cached[0].registry == kind and cached[0].name == name:
        _COMMITS.move_to_end(head)
        return cached[0], dict(cached[1])
    log, versions = _decode_commit(store, kind, name, head)
    _remember(_COMMITS, head, (log, versions))
    return log, dict(versions)


def _decode_commit(
    store: Store, kind: RegistryKind, name: str, head: str
) -> tuple[RegistryLog, dict[str, tuple[int, str]]]:
    where = f"the {kind} registry {name!r} at {head[:10]}"
    headers = parse_commit(store.read_object(head, COMMIT))
    trees = headers.get("tree")
    if not trees:
        raise RecordError(f"{where} is not a commit with a tree")
    entries = parse_tree(store.read_object(trees[0].decode("ascii", "replace"), TREE))
    log_entry = entries.get(_LOG)
    if log_entry is None or log_entry[0] != MODE_BLOB:
        raise RecordError(f"{where} has no {_LOG}")
    data = store.read_object(log_entry[1], BLOB)
    if len(data) > _MAX_LOG_BYTES:
        raise RecordError(f"{where}: its log is larger than {_MAX_LOG_BYTES} bytes")
    log = RegistryLog.decode(data, where=where)
    if log.registry != kind or log.name != name:
        raise RecordError(f"{where} holds the log of {log.registry} {log.name!r}")
    versions: dict[str, tuple[int, str]] = {}
    versions_entry = entries.get(_VERSIONS)
    if versions_entry is not None and versions_entry[0] == MODE_TREE:
        versions = {
            version_id: entry
            for version_id, entry in parse_tree(store.read_object(versions_entry[1], TREE)).items()
            if is_version_id(version_id) and entry[0] == MODE_TREE
        }
    return log, versions


def _write_commit(
    store: Store,
    kind: RegistryKind,
    name: str,
    log: RegistryLog,
    versions: Mapping[str, tuple[int, str]],
    parents: list[str],
    message: str,
    objects_first: Iterable[GitObject] = (),
) -> tuple[str, Keep]:
    """Write a registry commit and what it needs as one pack; its id and the pack's keep.

    The keep protects the pack from git's maintenance until it is released,
    once the registry's ref (or whatever else needs ``objects_first``) reaches it.
    """
    log_blob = blob(log.encode())
    entries = {_LOG: (MODE_BLOB, log_blob.id)}
    objects = [log_blob]
    if versions:
        versions_tree = tree(dict(versions))
        objects.append(versions_tree)
        entries[_VERSIONS] = (MODE_TREE, versions_tree.id)
    root = tree(entries)
    now = time.time()
    new = commit(
        tree_id=root.id,
        parents=parents,
        author=store.identity,
        timestamp=now,
        tz_offset_minutes=utc_offset_minutes(now),
        message=f"mlops-lite {kind} {name}: {message}\n",
    )
    # One pack for what the commit needs and the commit: a run's step and its
    # version land together.
    keep = store.write_objects([*objects_first, *objects, root, new], ref=registry_ref(kind, name))
    _remember(_COMMITS, new.id, (log, dict(versions)))
    return new.id, keep


def append_events(
    store: Store,
    kind: RegistryKind,
    name: str,
    events: Iterable[RegistryEvent],
    *,
    artifacts: Mapping[str, str] | None = None,
    check: Callable[[RegistryState], None] | None = None,
    objects: Iterable[GitObject] = (),
    hold: Callable[[Keep], None] | None = None,
) -> RegistryState:
    """Append ``events`` to the registry (creating it), and return its new state.

    ``artifacts`` (``{version id: artifact tree id}``) must be in the store, or
    among ``objects``, which are written with the first commit attempt. ``check``
    sees the state the events will follow and may raise to refuse them; it runs
    again if another writer moved the ref meanwhile.

    ``hold`` is for ``objects`` that another ref needs too (a recording run's
    step objects): it receives the keep of the pack holding them, to release
    once that ref reaches them. Every other keep is released here, once the
    registry's ref has moved (or the attempt lost the race).
    """
    new_events = list(events)
    pending = list(objects)
    ref = registry_ref(kind, name)
    # The pack of the first attempt holds ``objects``: a later attempt's commit
    # names them from there, so its keep lasts until the loop is over.
    carried: Keep | None = None
    try:
        for _ in range(_ATTEMPTS):
            head = store.refs.read(ref)
            versions: dict[str, tuple[int, str]]
            if head is None:
                log, versions = RegistryLog(kind, name, []), {}
            else:
                log, versions = _read_commit(store, kind, name, head)
            if check is not None:
                check(_state_at(store, kind, name, head) if head else fold(kind, name, []))
            log = RegistryLog(kind, name, [*log.events, *new_events])
            for version_id, artifact_id in (artifacts or {}).items():
                versions[version_id] = (MODE_TREE, artifact_id)
            actions = ", ".join(sorted({event.action for event in new_events}))
            new_head, keep = _write_commit(
                store, kind, name, log, versions, [head] if head else [], actions or "update",
                objects_first=pending,
            )  # fmt: skip
            if pending:
                carried, pending = keep, []
            try:
                if artifacts:
                    # This clone made the artifacts this commit adds (save_artifact, a run's
                    # outputs): their pickles may be loaded here, as a run's may (store.trust).
                    remember_recorded(store, new_head)
                store.refs.compare_and_swap(ref, head, new_head)
            except RefConflictError:
                continue  # another writer appended at the same moment: append after theirs
            finally:
                if keep is not carried:
                    keep.release()
            state = fold(kind, name, log.events)
            _remember(_STATES, new_head, state)
            return state
        raise RefConflictError(f"{ref} kept changing; try again")
    finally:
        if carried is not None:
            if hold is not None:
                hold(carried)
            else:
                carried.release()


def merge_registry(store: Store, ref: str, local: str, remote: str) -> tuple[str, list[str]]:
    """Reconcile a registry that a teammate changed on the remote while we changed ours.

    Moves ``ref`` from ``local`` to a commit with ``remote`` and ``local`` as
    parents, whose log keeps the remote's events in place and replays ours after
    them; returns that commit and what the replay changed for our events.
    ``RefConflictError`` when the ref no longer points at ``local``.
    """
    parsed = parse_registry_ref(ref)
    if parsed is None:
        raise RecordError(f"{ref} is not a model or artifact registry")
    kind, name = parsed
    theirs_log, theirs_versions = _read_commit(store, kind, name, remote)
    ours_log, ours_versions = _read_commit(store, kind, name, local)
    events = merge_logs(theirs_log.events, ours_log.events)
    known = {event.event_id for event in theirs_log.events}
    replayed = [event for event in ours_log.events if event.event_id not in known]
    merged_log = RegistryLog(kind, name, events)
    head, keep = _write_commit(
        store,
        kind,
        name,
        merged_log,
        {**ours_versions, **theirs_versions},
        [remote, local],
        "merge of a teammate's changes",
    )
    try:
        store.refs.compare_and_swap(ref, local, head)
    finally:
        keep.release()
    report = merge_report(
        fold(kind, name, ours_log.events), fold(kind, name, merged_log.events), replayed
    )
    return head, report


def introducing_commit(store: Store, name: str, version_id: str) -> str | None:
    """The commit of artifact ``name``'s chain that added ``version_id``'s tree, if any."""
    head = store.refs.read(registry_ref("artifact", name))
    pending, seen = [head] if head else [], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        parents = [
            parent.decode("ascii", "replace")
            for parent in parse_commit(store.read_object(current, COMMIT)).get("parent", [])
        ]
        holding = [p for p in parents if version_id in _read_commit(store, "artifact", name, p)[1]]
        if not holding:
            return (
                current if version_id in _read_commit(store, "artifact", name, current)[1] else None
            )
        pending.extend(holding)
    return None


def is_ancestor(store: Store, ancestor: str, descendant: str) -> bool:
    """Whether ``ancestor`` is ``descendant`` or one of its ancestors (in this store)."""
    pending, seen = [descendant], set()
    while pending:
        current = pending.pop()
        if current == ancestor:
            return True
        if current in seen or not store.has_object(current):
            continue
        seen.add(current)
        parents = parse_commit(store.read_object(current, COMMIT)).get("parent", [])
        pending.extend(parent.decode("ascii", "replace") for parent in parents)
    return False


# -- the writes shared by runs and by calls outside a run --------------------------


def set_stage(
    store: Store,
    model: str,
    version_id: str,
    stage: str,
    *,
    force: bool,
    run: Mapping[str, str] | None = None,
) -> RegistryState:
    """Move a model version to ``stage``; ``ModelStageError`` if another holds it and no force.

    With ``force``, the version holding the stage is archived. The change is kept in
    the model's stage history (who, when, from which run).
    """
    if stage not in STAGES:
        hint = " ('latest' names the newest version; no version can be put there)"
        raise ModelStageError(
            f"model {model!r}: {stage!r} is not a stage; stages are {', '.join(STAGES)}"
            + (hint if stage == LATEST else "")
        )

    def check(state: RegistryState) -> None:
        version = _version(state, "model", model, version_id)
        holder = state.stages.get(stage)
        if stage in EXCLUSIVE_STAGES and holder not in (None, version_id) and not force:
            held = state.versions[holder].name
            raise ModelStageError(
                f"model {model!r}: version {version.name} cannot move to {stage}: version "
                f"{held} is there; call set_stage({stage!r}, force=True) to move it anyway "
                f"(version {held} then becomes archived)"
            )

    event = new_event(
        store, "set_stage", version_id=version_id, stage=stage, force=force, run=dict(run or {})
    )
    return append_events(store, "model", model, [event], check=check)


def log_version_metadata(
    store: Store,
    kind: RegistryKind,
    name: str,
    version_id: str,
    metadata: Mapping[str, Any],
    *,
    run: Mapping[str, str] | None = None,
) -> RegistryState:
    """Merge ``metadata`` into a model version's or an artifact version's ``run_metadata``."""
    event = new_event(
        store, "log_metadata", version_id=version_id, metadata=dict(metadata), run=dict(run or {})
    )
    return append_events(
        store, kind, name, [event], check=lambda state: _version(state, kind, name, version_id)
    )


def _version(state: RegistryState, kind: RegistryKind, name: str, version_id: str) -> Any:
    version = state.versions.get(version_id)
    if version is None:
        error = ModelVersionNotFoundError if kind == "model" else ArtifactVersionNotFoundError
        raise error(f"{kind} {name!r} has no version with id {version_id}")
    return version


def save_artifact_version(
    store: Store,
    name: str,
    output: OutputRecord,
    *,
    artifact_tree: str,
    version: str | None = None,
    tags: Iterable[str] = (),
    artifact_type: str = "",
    metadata: Mapping[str, Any] | None = None,
    run: Mapping[str, str] | None = None,
    link: Mapping[str, str] | None = None,
    objects: Iterable[GitObject] = (),
    hold: Callable[[Keep], None] | None = None,
) -> tuple[RegistryState, str]:
    """Create a version of artifact ``name`` holding ``artifact_tree``.

    The tree must be in the store or among ``objects`` (written with the commit;
    ``hold`` as for ``append_events``). ``link`` (``{"model", "version_id",
    "kind"}``) links it to a model version. Returns the new state and the
    version's id.
    """
    version_id = uuid.uuid4().hex
    current = read_registry(store, "artifact", name)
    latest = current.latest() if current is not None else None
    event = new_event(
        store,
        "create_version",
        version_id=version_id,
        number=(latest.number if latest else 0) + 1,
        name=version,
        run=dict(run or {}),
        metadata=dict(metadata or {}),
        tags=list(tags),
        artifact_id=output.artifact_id,
        artifact_type=artifact_type,
        materializer=output.materializer,
        materializer_version=output.materializer_version,
        type_name=output.type_name,
        size=output.size,
        uses_pickle=output.uses_pickle,
        digest=output.digest,
        model_name=(link or {}).get("model", ""),
        model_version_id=(link or {}).get("version_id", ""),
        link_kind=(link or {}).get("kind", ""),
    )
    state = append_events(
        store,
        "artifact",
        name,
        [event],
        artifacts={version_id: artifact_tree},
        objects=objects,
        hold=hold,
    )
    return state, version_id


def build_output(payload: Any) -> tuple[OutputRecord, list[GitObject]]:
    """A materialized value (``runs.ArtifactPayload``) as an artifact tree: record and objects.

    Nothing is written: the objects go with the version's commit
    (``save_artifact_version(objects=...)``), in one pack kept until its ref moves.
    """
    artifact_tree, objects = build_artifact(
        payload.payload,
        materializer=payload.materializer,
        materializer_version=payload.materializer_version,
        type_name=payload.type_name,
        uses_pickle=payload.uses_pickle,
        files=payload.stores_files,
    )
    record = OutputRecord(
        artifact_id=artifact_tree.id,  # type: ignore[arg-type]
        materializer=payload.materializer,
        materializer_version=payload.materializer_version,
        type_name=payload.type_name,
        size=len(payload.payload),
        uses_pickle=payload.uses_pickle,
        digest=content_digest(payload.payload),
    )
    return record, objects
