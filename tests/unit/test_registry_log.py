"""The registry event log: numbering, stages, history, merging two clones' logs."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_lite.core.registry import (
    EXCLUSIVE_STAGES,
    RegistryEvent,
    RegistryLog,
    fold,
    merge_logs,
    merge_report,
)
from mlops_lite.errors import RecordError


def event(action: str, **fields: Any) -> RegistryEvent:
    return RegistryEvent(
        event_id=uuid.uuid4().hex, action=action, time=fields.pop("time", 1.0), **fields
    )  # type: ignore[arg-type]


def create(number: int | None = None, name: str | None = None, **fields: Any) -> RegistryEvent:
    return event("create_version", version_id=uuid.uuid4().hex, number=number, name=name, **fields)


def stage(version: RegistryEvent, name: str, force: bool = False, **fields: Any) -> RegistryEvent:
    return event("set_stage", version_id=version.version_id, stage=name, force=force, **fields)


def test_versions_are_numbered_in_order_and_named_after_their_number() -> None:
    events = [create(1), create(2), create(name="rf")]
    state = fold("model", "m", events)
    assert [(v.number, v.name) for v in state.ordered()] == [(1, "1"), (2, "2"), (3, "rf")]
    assert state.find("rf").number == 3  # type: ignore[union-attr]
    assert state.find(2).name == "2"  # type: ignore[union-attr]
    assert state.find("latest").name == "rf"  # type: ignore[union-attr]
    assert state.find(uuid.UUID(events[0].version_id).hex).number == 1  # type: ignore[union-attr]


def test_a_taken_number_or_name_moves_to_the_next_free_one() -> None:
    state = fold("model", "m", [create(1), create(1), create(name="rf"), create(name="rf")])
    assert [(v.number, v.name) for v in state.ordered()] == [
        (1, "1"),
        (2, "2"),
        (3, "rf"),
        (4, "rf-2"),
    ]


def test_at_most_one_version_holds_a_stage_and_force_archives_the_holder() -> None:
    first, second = create(1), create(2)
    events = [first, second, stage(first, "production"), stage(second, "production")]
    state = fold("model", "m", events)
    assert state.stages == {"production": first.version_id}
    refused = state.history[-1]
    assert not refused.applied and "held production already" in refused.reason

    state = fold("model", "m", [*events, stage(second, "production", force=True)])
    assert state.stages == {"production": second.version_id}
    assert state.versions[first.version_id].stage == "archived"
    assert state.history[-1].displaced == first.version_id


def test_moving_a_version_to_another_stage_releases_its_old_one() -> None:
    only = create(1)
    state = fold("model", "m", [only, stage(only, "staging"), stage(only, "production")])
    assert state.stages == {"production": only.version_id}


def test_events_about_unknown_versions_are_ignored_not_fatal() -> None:
    ghost = create(1)
    state = fold("model", "m", [stage(ghost, "production"), event("log_metadata", version_id="x")])
    assert state.versions == {} and len(state.ignored) == 2


@pytest.mark.parametrize("bad", [{"number": "3"}, {"action": "delete"}, {"run": ["a"]}])
def test_a_damaged_log_is_a_record_error(bad: dict[str, Any]) -> None:
    good = RegistryLog("model", "m", [create(1)]).to_dict()
    good["events"][0].update(bad)
    log = RegistryLog("model", "m", [])
    from mlops_lite.core.records import pack_value

    data = pack_value({"schema": 1, "kind": "registry-log", "data": good})
    with pytest.raises(RecordError):
        type(log).decode(data)


def test_a_log_survives_its_encoding() -> None:
    log = RegistryLog("artifact", "data", [create(1, metadata={"k": [1, 2.5]}, tags=["a"])])
    assert RegistryLog.decode(log.encode()) == log


# merging two clones' logs -----------------------------------------------------------


def test_merging_keeps_the_remote_numbers_and_renumbers_ours() -> None:
    base = [create(1), create(2)]
    theirs = [*base, create(3, run={"pipeline": "p", "run": "bob-run"})]
    ours_version = create(3, run={"pipeline": "p", "run": "alice-run"})
    ours = [*base, ours_version]
    merged = merge_logs(theirs, ours)
    state = fold("model", "m", merged)
    assert state.versions[theirs[-1].version_id].number == 3
    assert state.versions[ours_version.version_id].number == 4
    report = merge_report(fold("model", "m", ours), state, [ours_version])
    assert report == [
        "model 'm': your version 3 (run alice-run) is now version 4: a teammate's version 3 "
        "reached the remote first"
    ]


def test_a_crossed_promotion_without_force_is_refused_and_reported() -> None:
    base = [create(1), create(2)]
    theirs = [*base, stage(base[0], "production")]
    ours_promotion = stage(base[1], "production")
    merged = fold("model", "m", merge_logs(theirs, [*base, ours_promotion]))
    assert merged.stages == {"production": base[0].version_id}
    assert [change.applied for change in merged.history] == [True, False]
    (message,) = merge_report(fold("model", "m", [*base, ours_promotion]), merged, [ours_promotion])
    assert re.search(r"your move of version 2 to production was not applied", message)


def test_a_crossed_forced_promotion_wins_and_archives_the_teammates() -> None:
    base = [create(1), create(2)]
    theirs = [*base, stage(base[0], "production", force=True)]
    ours_promotion = stage(base[1], "production", force=True)
    merged = fold("model", "m", merge_logs(theirs, [*base, ours_promotion]))
    assert merged.stages == {"production": base[1].version_id}
    assert merged.versions[base[0].version_id].stage == "archived"
    (message,) = merge_report(fold("model", "m", [*base, ours_promotion]), merged, [ours_promotion])
    assert "replaced version 1, which a teammate had put there" in message


# properties ---------------------------------------------------------------------------

_names = st.one_of(st.none(), st.sampled_from(["rf", "sgd", "1", "2", "best"]))


@st.composite
def histories(draw: st.DrawFn) -> list[RegistryEvent]:
    """A random sequence of creations and stage moves."""
    events: list[RegistryEvent] = []
    created: list[RegistryEvent] = []
    for _ in range(draw(st.integers(0, 12))):
        if created and draw(st.booleans()):
            target = draw(st.sampled_from(created))
            events.append(
                stage(target, draw(st.sampled_from(["staging", "production", "archived", "none"])),
                      force=draw(st.booleans()))
            )  # fmt: skip
        else:
            made = create(draw(st.one_of(st.none(), st.integers(1, 6))), draw(_names))
            created.append(made)
            events.append(made)
    return events


@given(histories(), histories(), histories())
def test_a_merge_never_changes_what_the_remote_already_had(
    shared: list[RegistryEvent], theirs: list[RegistryEvent], ours: list[RegistryEvent]
) -> None:
    remote = [*shared, *theirs]
    before = fold("model", "m", remote)
    after = fold("model", "m", merge_logs(remote, [*shared, *ours]))
    for version_id, version in before.versions.items():
        assert (after.versions[version_id].number, after.versions[version_id].name) == (
            version.number,
            version.name,
        )
    numbers = [v.number for v in after.versions.values()]
    names = [v.name for v in after.versions.values()]
    assert len(set(numbers)) == len(numbers) and len(set(names)) == len(names)


@given(histories(), histories())
def test_merging_is_idempotent_and_every_event_survives(
    theirs: list[RegistryEvent], ours: list[RegistryEvent]
) -> None:
    once = merge_logs(theirs, ours)
    assert merge_logs(once, ours) == once
    assert {e.event_id for e in once} == {e.event_id for e in [*theirs, *ours]}


@given(histories())
def test_no_stage_is_ever_held_by_two_versions(events: list[RegistryEvent]) -> None:
    state = fold("model", "m", events)
    for name in EXCLUSIVE_STAGES:
        holders = [v for v in state.versions.values() if v.stage == name]
        assert len(holders) <= 1
        assert (state.stages.get(name) is None) == (not holders)
