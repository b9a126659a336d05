"""Registries as commit chains: appends by compare-and-swap, merges of two heads, stage rules."""

from __future__ import annotations

import uuid

import pytest

from mlops_lite.core.registry import RegistryState
from mlops_lite.core.secrets import REDACTED, register_secret
from mlops_lite.errors import ModelStageError, ModelVersionNotFoundError, RecordError
from mlops_lite.store import MemoryStore
from mlops_lite.store.objects import blob, parse_commit
from mlops_lite.store.registry import (
    append_events,
    is_ancestor,
    log_version_metadata,
    merge_registry,
    new_event,
    read_registry,
    registry_names,
    registry_ref,
    set_stage,
)


def new_version(store: MemoryStore, model: str = "churn") -> str:
    version_id = uuid.uuid4().hex
    append_events(
        store, "model", model, [new_event(store, "create_version", version_id=version_id)]
    )
    return version_id


def test_a_registry_is_a_chain_of_commits_one_per_append() -> None:
    store = MemoryStore()
    assert read_registry(store, "model", "churn") is None
    first = new_version(store)
    head_one = store.refs.read(registry_ref("model", "churn"))
    second = new_version(store)
    head_two = store.refs.read(registry_ref("model", "churn"))
    assert head_one and head_two
    assert parse_commit(store.read_object(head_two))["parent"] == [head_one.encode()]
    state = read_registry(store, "model", "churn")
    assert state is not None and [v.version_id for v in state.ordered()] == [first, second]
    assert registry_names(store, "model") == ["churn"] and registry_names(store, "artifact") == []


def test_an_append_after_a_concurrent_writer_lands_after_theirs() -> None:
    store = MemoryStore()
    mine = new_event(store, "create_version", version_id=uuid.uuid4().hex)
    calls = []

    def check(state: RegistryState) -> None:
        # The first time, another writer appends before our compare-and-swap.
        if not calls:
            new_version(store)
        calls.append(len(state.versions))

    append_events(store, "model", "churn", [mine], check=check)
    state = read_registry(store, "model", "churn")
    assert state is not None and state.versions[mine.version_id].number == 2
    assert calls == [0, 1]  # checked again against the state it finally follows


def test_set_stage_refuses_a_held_stage_without_force_and_keeps_history() -> None:
    store = MemoryStore()
    first, second = new_version(store), new_version(store)
    set_stage(store, "churn", first, "production", force=False, run={"pipeline": "p", "run": "r"})
    with pytest.raises(ModelStageError, match=r"version 1 is there; call set_stage\('production'"):
        set_stage(store, "churn", second, "production", force=False)
    with pytest.raises(ModelStageError, match="'latest' names the newest version"):
        set_stage(store, "churn", second, "latest", force=True)
    state = set_stage(store, "churn", second, "production", force=True)
    assert state.stages == {"production": second}
    assert [(c.version_id, c.run.get("run"), c.displaced) for c in state.history] == [
        (first, "r", None),
        (second, None, first),
    ]


def test_metadata_for_a_version_that_does_not_exist_is_refused() -> None:
    store = MemoryStore()
    new_version(store)
    with pytest.raises(ModelVersionNotFoundError):
        log_version_metadata(store, "model", "churn", uuid.uuid4().hex, {"a": 1})


def test_merging_two_heads_makes_a_commit_with_both_as_parents() -> None:
    store = MemoryStore()
    ref = registry_ref("model", "churn")
    new_version(store)
    base = store.refs.read(ref)
    new_version(store)
    theirs = store.refs.read(ref)
    store.refs.compare_and_swap(ref, theirs, base)  # back to the fork point: our side now
    ours_version = new_version(store)
    ours = store.refs.read(ref)
    assert theirs and ours and base
    merged, report = merge_registry(store, ref, ours, theirs)
    assert store.refs.read(ref) == merged
    assert parse_commit(store.read_object(merged))["parent"] == [theirs.encode(), ours.encode()]
    assert is_ancestor(store, theirs, merged) and is_ancestor(store, ours, merged)
    assert not is_ancestor(store, ours, theirs)
    assert report == [
        "model 'churn': your version 2 is now version 3: a teammate's version 2 reached the "
        "remote first"
    ]
    state = read_registry(store, "model", "churn")
    assert state is not None and state.versions[ours_version].number == 3


def test_a_registry_that_is_not_a_log_is_a_record_error() -> None:
    store = MemoryStore()
    head = store.pin_code().commit  # a commit whose tree holds no log
    store.refs.compare_and_swap(registry_ref("model", "churn"), None, head)
    with pytest.raises(RecordError, match=r"has no log\.msgpack"):
        read_registry(store, "model", "churn")


def test_a_registry_ref_naming_a_blob_is_refused_even_if_the_blob_reads_like_a_commit() -> None:
    # What a hostile clone could push: read untyped, these bytes parse as a commit
    # and the registry would be read through them.
    store = MemoryStore()
    new_version(store)
    ref = registry_ref("model", "churn")
    head = store.refs.read(ref)
    assert head is not None
    forged = blob(store.read_object(head))
    store.write_objects([forged])
    store.refs.compare_and_swap(ref, head, forged.id)
    with pytest.raises(RecordError, match="is a blob, where a commit belongs"):
        read_registry(store, "model", "churn")


def test_secrets_never_reach_registry_metadata() -> None:
    register_secret("registry-secret-value")
    store = MemoryStore()
    version = new_version(store)
    log_version_metadata(store, "model", "churn", version, {"token": "registry-secret-value"})
    state = read_registry(store, "model", "churn")
    assert state is not None and state.versions[version].metadata == {"token": REDACTED}
