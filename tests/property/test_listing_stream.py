"""An archive's listing read as a stream agrees with the whole unpack it replaced.

``Listing.decode`` walks over the value and cache columns and checks them when
they are first read (``complete``). Together the two must accept exactly what
unpacking the whole listing and checking every column accepted, and read the
same columns from it, whatever a teammate's bytes hold.
"""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import example, given
from hypothesis import strategies as st

from mlops_lite.errors import RecordError
from mlops_lite.store import archives
from mlops_lite.store.archives import Listing

_RUN = "refs/mlops/runs/p/run-{}"


def _whole(data: bytes) -> dict[str, list[Any]] | None:
    """The columns as the whole-unpack decoder read them (None: refused)."""
    if len(data) > archives._MAX_LISTING_BYTES:
        return None
    try:
        envelope = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.exceptions.UnpackException):
        return None
    if not isinstance(envelope, dict) or envelope.get("kind") != "archive":
        return None
    columns = envelope.get("data")
    if envelope.get("schema") != 1 or not isinstance(columns, dict):
        return None
    found = {}
    for name, check in archives._COLUMNS.items():
        column = columns.get(name)
        if type(column) is not list or not check(column):
            return None
        found[name] = column
    listing = Listing(**found)
    count = len(listing)
    if (
        count > archives._MAX_RUNS
        or any(len(found[name]) != count for name in archives._RUN_COLUMNS)
        or any(
            len({len(found[name]) for name in group}) != 1
            for group in (archives._VALUE_COLUMNS, archives._CACHE_COLUMNS)
        )
        or len(set(listing.refs)) != count
        or not archives.are_run_refs(listing.refs)
        or not archives._all_shas(listing.shas)
        or not set(listing.statuses) <= archives._STATUSES
    ):
        return None
    for positions in (listing.value_runs, listing.cache_runs):
        if positions and not 0 <= min(positions) <= max(positions) < count:
            return None
    return found


def _streamed(data: bytes) -> dict[str, list[Any]] | None:
    try:
        listing = Listing.decode(data, where="archive x").complete()
    except RecordError:
        return None
    return {name: getattr(listing, name) for name in archives._COLUMNS}


def _listing(runs: int, values: int, keys: int) -> bytes:
    return Listing(
        refs=[_RUN.format(number) for number in range(runs)],
        shas=[f"{number:040x}" for number in range(runs)],
        statuses=["completed"] * runs,
        start_times=[1.5] * runs,
        end_times=[None] * runs,
        code_commits=["ab" * 20] * runs,
        authors=["a@x"] * runs,
        author_names=[None] * runs,
        hosts=["h"] * runs,
        parameters=[b"\x80"] * runs,
        metadata=[b"\x80"] * runs,
        value_runs=[number % max(runs, 1) for number in range(values)],
        value_names=[f"metric:m{number}" for number in range(values)],
        value_data=[b"\xcb" + bytes(8)] * values,
        value_numbers=[0.0] * values,
        cache_runs=[number % max(runs, 1) for number in range(keys)],
        cache_keys=[f"{number:032x}" for number in range(keys)],
        cache_steps=["step"] * keys,
    ).encode()


@example(runs=1, values=0, keys=0, edits=[("append", 0, b"\x00")])
@given(
    runs=st.integers(1, 4),
    values=st.integers(0, 4),
    keys=st.integers(0, 4),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["set", "cut", "insert", "delete", "append"]),
            st.integers(0),
            st.binary(),
        ),
        max_size=4,
    ),
)
def test_a_streamed_listing_accepts_and_reads_what_a_whole_unpack_did(
    runs: int, values: int, keys: int, edits: list[tuple[str, int, bytes]]
) -> None:
    data = bytearray(_listing(runs, values, keys))
    for kind, position, chunk in edits:
        position %= len(data) + 1
        if kind == "set":
            data[position : position + len(chunk)] = chunk
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = chunk
        elif kind == "append":
            data += chunk
        else:
            del data[position : position + len(chunk) + 1]
        if not data:
            break
    assert _streamed(bytes(data)) == _whole(bytes(data))


@given(
    entries=st.lists(
        st.tuples(
            st.sampled_from([*archives._COLUMNS, b"refs", 1, "data", "other"]),
            st.sampled_from([[], None, [1], ["x"], {"a": 1}, {1: 2}, [{(1,): 2}], b"\xc1"]),
        ),
        max_size=6,
    )
)
def test_a_listing_with_keys_repeated_or_strange_reads_as_a_whole_unpack_did(
    entries: list[tuple[Any, Any]],
) -> None:
    # The columns of a valid listing, then these written after them into its map
    # (a key repeated, one that is not a string, a value that is not a column).
    base = msgpack.unpackb(_listing(2, 2, 2), raw=False)["data"]
    count = len(base) + len(entries)
    body = b"".join(
        msgpack.packb(key) + msgpack.packb(value, use_bin_type=True)
        for key, value in [*base.items(), *entries]
    )
    header = b"\xdf" + count.to_bytes(4, "big")
    data = (
        b"\x83"
        + msgpack.packb("schema")
        + msgpack.packb(1)
        + msgpack.packb("kind")
        + msgpack.packb("archive")
        + msgpack.packb("data")
        + header
        + body
    )
    assert _streamed(data) == _whole(data)
