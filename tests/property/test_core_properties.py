"""Properties of the pure core: record encoding, cache keys, artifact chunking."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mlops_lite.core.hashing import cache_key, content_digest
from mlops_lite.core.ids import ArtifactId
from mlops_lite.core.names import is_valid_name
from mlops_lite.core.records import (
    OutputRecord,
    RunRecord,
    StepRecord,
    StepSummary,
    pack_value,
    unpack_value,
)
from mlops_lite.core.values import is_recordable
from mlops_lite.errors import RecordError
from mlops_lite.store import artifacts
from mlops_lite.store.layout import RUNS_PREFIX, are_run_refs, parse_run_ref
from mlops_lite.store.objects import GitObject, parse_commit

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**100), max_value=2**100),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)
json_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=4),
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Structural equality that also checks exact types and treats NaN as equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@given(json_like)
def test_recorded_values_round_trip_exactly(value: Any) -> None:
    assert is_recordable(value)
    assert same(unpack_value(pack_value(value)), value)


@given(
    st.dictionaries(st.text(max_size=8), json_like, max_size=4), st.text(min_size=1, max_size=10)
)
def test_run_record_round_trips(parameters: dict[str, Any], name: str) -> None:
    record = RunRecord(
        run_name=name,
        pipeline_name="p",
        status="completed",
        start_time=1.5,
        parameters=parameters,
        step_names=["a", "b"],
    )
    decoded = RunRecord.decode(record.encode())
    assert decoded.run_name == name
    assert same(decoded.parameters, parameters)
    assert decoded.step_names == ["a", "b"]


@given(st.dictionaries(st.text(max_size=8), json_like, max_size=4))
def test_step_record_round_trips(metadata: dict[str, Any]) -> None:
    record = StepRecord(
        name="s", function="m.f", status="completed", metadata=metadata, cache_key="k"
    )
    decoded = StepRecord.decode(record.encode())
    assert same(decoded.metadata, metadata)
    assert decoded.cache_key == "k"


@given(st.dictionaries(st.text(max_size=6), json_like, max_size=5))
def test_cache_key_ignores_dict_order(parameters: dict[str, Any]) -> None:
    reordered = dict(reversed(list(parameters.items())))
    common = {
        "code_fingerprint": "f",
        "input_artifacts": {"x": "a"},
        "materializers": {"output": "m"},
    }
    assert cache_key(parameters=parameters, **common) == cache_key(parameters=reordered, **common)  # type: ignore[arg-type]


@given(st.integers(), st.integers())
def test_cache_key_changes_with_a_parameter(a: int, b: int) -> None:
    def key(value: int) -> str:
        return cache_key(
            code_fingerprint="f", parameters={"lr": value}, input_artifacts={}, materializers={}
        )

    assert (key(a) == key(b)) == (a == b)


@given(st.binary(max_size=3 * 1024 * 1024), st.sampled_from([0, 1, 7]))
def test_artifact_payload_round_trips_through_chunks(payload: bytes, repeat: int) -> None:
    data = payload * repeat if repeat else payload
    tree, objects = artifacts.build_artifact(
        data, materializer="m", materializer_version=1, type_name="t", uses_pickle=False
    )
    by_id: dict[str, GitObject] = {obj.id: obj for obj in objects}
    meta, read = artifacts.read_artifact(
        lambda oid, kind=None: bytes(by_id[oid].data), tree.id, digest=content_digest(data)
    )
    assert bytes(read) == data
    assert meta.size == len(data)


def test_large_payload_is_chunked_below_host_limits() -> None:
    import random

    data = random.Random(1).randbytes(20 * 1024 * 1024)
    spans = list(artifacts.chunk_boundaries(data))
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert all(end - start <= artifacts.CHUNK_MAX for start, end in spans)


def test_insertion_keeps_most_chunks() -> None:
    import random

    data = random.Random(2).randbytes(30 * 1024 * 1024)
    changed = data[:1000] + b"inserted" + data[1000:]

    def chunk_set(payload: bytes) -> set[bytes]:
        return {payload[s:e] for s, e in artifacts.chunk_boundaries(payload)}

    before, after = chunk_set(data), chunk_set(changed)
    assert len(before & after) >= len(before) - 2


@given(st.sampled_from(["size", "materializer", "type_name"]), st.sampled_from([[], 1.5, {}]))
def test_a_wrong_nested_field_is_named_by_its_whole_path(field: str, wrong: Any) -> None:
    output = OutputRecord(
        artifact_id=ArtifactId("a" * 40), materializer="m", materializer_version=1,
        type_name="builtins.int", size=1,
    )  # fmt: skip
    summary = StepSummary(status="completed", cache_key=None, outputs={"model": output})
    record = RunRecord(
        run_name="r",
        pipeline_name="p",
        status="completed",
        start_time=1.0,
        step_summary={"train": summary},
    )
    data = record.to_dict()
    data["step_summary"]["train"]["outputs"]["model"][field] = wrong
    with pytest.raises(RecordError) as raised:
        RunRecord.from_dict(data, where="run p/r")
    assert str(raised.value).startswith(
        f"run p/r: field 'step_summary'['train']: field 'outputs'['model']: field '{field}' "
    )


_NAME_LIKE = st.text(alphabet="ab_.-/Z9\n\u00e9", max_size=12) | st.sampled_from(
    ["a" * 200, "a" * 201, "x.lock", "a..b", ".a", "-a", "a.b", "a/b", ""]
)


@given(_NAME_LIKE, _NAME_LIKE)
def test_a_run_ref_parses_exactly_when_both_names_are_valid(pipeline: str, run: str) -> None:
    # parse_run_ref checks a ref in one match: it must agree with the name rules.
    ref = f"{RUNS_PREFIX}{pipeline}/{run}"
    expected = (
        (pipeline, run) if is_valid_name(pipeline, dots=False) and is_valid_name(run) else None
    )
    assert parse_run_ref(ref) == expected


def _headers_line_by_line(data: bytes) -> dict[str, list[bytes]]:
    """What parse_commit must answer, written plainly: one header per line."""
    headers: dict[str, list[bytes]] = {}
    for line in data.split(b"\n\n", 1)[0].split(b"\n"):
        if line and not line.startswith(b" "):
            key, _, value = line.partition(b" ")
            headers.setdefault(key.decode("utf-8", "replace"), []).append(value)
    return headers


@given(st.binary(max_size=80) | st.text(alphabet="pa t\n\r\u00e9", max_size=60).map(str.encode))
def test_commit_headers_parse_as_one_line_each(data: bytes) -> None:
    assert parse_commit(data) == _headers_line_by_line(data)


@given(st.lists(st.tuples(_NAME_LIKE, _NAME_LIKE), max_size=4))
@example([("a", f"b\n{RUNS_PREFIX}c/d")])  # one ref that reads as two lines
@example([("a", "b.lock"), ("c", "d")])
@example([("a", "b..c")])
def test_refs_checked_together_pass_exactly_when_each_parses(names: list[tuple[str, str]]) -> None:
    refs = [f"{RUNS_PREFIX}{pipeline}/{run}" for pipeline, run in names]
    assert are_run_refs(refs) == all(parse_run_ref(ref) is not None for ref in refs)
