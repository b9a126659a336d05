"""Property tests: a payload in pieces chunks, hashes and reads exactly as its joined bytes.

Chunk boundaries decide chunk ids, so they must not depend on how a payload
is split into pieces: an array recorded from its own memory must give the
artifact (and chunks) it gave when its .npy was one ``bytes``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_lite.core.hashing import content_digest
from mlops_lite.core.payload import Payload
from mlops_lite.store import artifacts
from mlops_lite.store.artifacts import chunk_boundaries

MARKER = b"\x9e\x37"


def joined_boundaries(data: bytes, low: int, high: int) -> Iterator[tuple[int, int]]:
    """The chunking of one ``bytes``, as it was before payloads came in pieces."""
    start = 0
    while len(data) - start > high:
        found = data.find(MARKER, start + low, start + high)
        end = found + len(MARKER) if found >= 0 else start + high
        yield start, end
        start = end
    yield start, len(data)


# Bytes rich in the marker and its halves, so that markers straddle piece edges.
pieces = st.lists(
    st.lists(st.sampled_from([b"\x9e", b"\x37", b"\x9e\x37", b"x", b"yz"]), max_size=40).map(
        b"".join
    ),
    min_size=1,
    max_size=6,
)


@given(pieces, st.integers(1, 8), st.integers(0, 8))
def test_pieces_chunk_as_their_joined_bytes(parts: list[bytes], low: int, extra: int) -> None:
    high = low + extra + len(MARKER)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(artifacts, "CHUNK_MIN", low)
        patch.setattr(artifacts, "CHUNK_MAX", high)
        joined = b"".join(parts)
        payload = Payload(parts)
        spans = list(chunk_boundaries(payload))
        assert spans == list(joined_boundaries(joined, low, high))
        assert [bytes(payload.span(a, b)) for a, b in spans] == [joined[a:b] for a, b in spans]
    assert content_digest(payload) == content_digest(joined)
    assert bytes(payload) == joined == bytes(payload.contiguous())
