"""Digests (xxh3-128) and the step cache key: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack
import xxhash

from mlops_lite.core.ids import CacheKey
from mlops_lite.core.payload import Payload

__all__ = ["CACHE_FORMAT_VERSION", "cache_key", "canonical_bytes", "content_digest"]

# Part of every cache key: bump it when the meaning of a recorded output changes
# (artifact layout, materializer contract), so old entries stop matching.
CACHE_FORMAT_VERSION = 1


def content_digest(data: bytes | bytearray | memoryview | Payload) -> str:
    """The xxh3-128 hex digest of an artifact's payload, recorded with it and checked on load.

    ~10x cheaper than SHA-1 on large payloads (DESIGN.md), so every load can afford it.
    A ``Payload`` is hashed piece by piece, to the digest of its joined bytes.
    """
    if isinstance(data, Payload):
        hasher = xxhash.xxh3_128()
        for part in data.parts:
            hasher.update(part)
        return hasher.hexdigest()
    return xxhash.xxh3_128_hexdigest(data)


def canonical_bytes(value: Any) -> bytes:
    """Deterministic msgpack encoding of a JSON-like value (maps sorted by key).

    Only used for hashing, so lists and tuples may encode alike: the recorded
    value, not this encoding, is what readers see.
    """
    packed: bytes = msgpack.packb(_canonical(value), use_bin_type=True)
    return packed


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        items = [(_canonical(k), _canonical(v)) for k, v in value.items()]
        items.sort(key=lambda item: msgpack.packb(item[0], use_bin_type=True))
        return ["__map__", items]
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return ["__bigint__", str(value)]
    return value


def cache_key(
    *,
    code_fingerprint: str,
    parameters: Mapping[str, Any],
    input_artifacts: Mapping[str, str],
    materializers: Mapping[str, str],
    data_files: Mapping[str, str] | None = None,
) -> CacheKey:
    """Key under which a step execution's outputs are reused.

    Everything that can change the outputs goes in: the step's code (including
    the project helpers it calls), its parameters, the ids of its input
    artifacts, the materializers chosen for its outputs and the format version,
    and the content ids of the data files the step declares (``@step(data=...)``).
    """
    payload = canonical_bytes(
        [
            CACHE_FORMAT_VERSION,
            code_fingerprint,
            dict(parameters),
            dict(input_artifacts),
            dict(materializers),
            # Empty unless the step declares data files: keys of other steps stay as they were.
            dict(data_files or {}),
        ]
    )
    return CacheKey(xxhash.xxh3_128_hexdigest(payload))
