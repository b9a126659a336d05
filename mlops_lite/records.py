"""Run and step records and their versioned msgpack encoding."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import msgpack

from mlops_lite.errors import RecordError, UnknownSchemaVersionError

SCHEMA_VERSION = 1

# msgpack extension codes for the few JSON-like values msgpack cannot keep apart.
_EXT_TUPLE = 1
_EXT_BIGINT = 2

_RecordT = TypeVar("_RecordT", bound="_Record")


def _default(value: Any) -> Any:
    if isinstance(value, tuple):
        return msgpack.ExtType(_EXT_TUPLE, pack_value(list(value)))
    if isinstance(value, int) and not isinstance(value, bool):
        return msgpack.ExtType(_EXT_BIGINT, str(value).encode())
    if isinstance(value, (dict, list, str, bytes, float, bool)) or value is None:
        return value  # a subclass (strict_types refuses those); treat as its base
    raise TypeError(f"cannot record a value of type {type(value).__qualname__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_TUPLE:
        return tuple(unpack_value(data))
    if code == _EXT_BIGINT:
        return int(data.decode())
    return msgpack.ExtType(code, data)


def pack_value(value: Any) -> bytes:
    """Encode a JSON-like value exactly: tuples, big ints and int keys survive."""
    packed: bytes = msgpack.packb(value, use_bin_type=True, strict_types=True, default=_default)
    return packed


def unpack_value(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)


def is_recordable(value: Any, _depth: int = 0) -> bool:
    """True for the JSON-like values a record can hold and give back unchanged."""
    if _depth > 100:
        return False
    kind = type(value)
    if value is None or kind in (bool, int, float, str, bytes):
        return True
    if kind in (list, tuple):
        return all(is_recordable(item, _depth + 1) for item in value)
    if kind is dict:
        return all(
            type(key) in (str, int, bool, float, bytes, tuple) and is_recordable(key, _depth + 1)
            and is_recordable(item, _depth + 1)
            for key, item in value.items()
        )
    return False


class _Record:
    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def encode(self) -> bytes:
        return pack_value({"schema": SCHEMA_VERSION, "kind": self.kind, "data": self.to_dict()})

    @classmethod
    def decode(cls: type[_RecordT], data: bytes, *, where: str = "record") -> _RecordT:
        try:
            envelope = unpack_value(data)
        except Exception as error:
            raise RecordError(f"{where} is not a valid mlops_lite record: {error}") from error
        if not isinstance(envelope, dict) or "schema" not in envelope:
            raise RecordError(f"{where} is not an mlops_lite record")
        schema = envelope["schema"]
        if schema != SCHEMA_VERSION:
            raise UnknownSchemaVersionError(
                f"{where} uses record schema {schema}, but this mlops_lite reads schema "
                f"{SCHEMA_VERSION}: upgrade mlops-lite (pip install -U mlops-lite) to read it"
            )
        if envelope.get("kind") != cls.kind:
            raise RecordError(f"{where} is a {envelope.get('kind')!r} record, expected {cls.kind!r}")
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        # Fields added later within the same schema are ignored by older readers.
        values = {k: v for k, v in envelope["data"].items() if k in known}
        return cls(**values)


@dataclass
class OutputRecord(_Record):
    """One output of a step: which artifact holds it and how it was written."""

    kind: ClassVar[str] = "output"
    artifact_id: str
    materializer: str
    materializer_version: int
    type_name: str
    size: int
    uses_pickle: bool = False


@dataclass
class StepRecord(_Record):
    """What happened to one step invocation in a run."""

    kind: ClassVar[str] = "step"
    name: str
    function: str
    status: str
    cached: bool = False
    cache_key: str | None = None
    code_fingerprint: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    upstream: list[str] = field(default_factory=list)
    start_time: float | None = None
    end_time: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # For a cache hit: the run (pipeline, run name, step) that produced the outputs.
    cached_from: dict[str, str] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    # How many times the step was tried (retries, dead workers, timeouts).
    attempts: int = 1

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


@dataclass
class RunRecord(_Record):
    """Everything about a run except its steps, which have records of their own."""

    kind: ClassVar[str] = "run"
    run_name: str
    pipeline_name: str
    status: str
    start_time: float
    end_time: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    step_names: list[str] = field(default_factory=list)
    code: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    entry_point: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    enable_cache: bool = True
    orchestrator: str = "local"
    author: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    reproduces: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Per finished step: status, cache_key, outputs and end_time, copied from the
    # step records so that indexing a run reads one record, not one per step.
    step_summary: dict[str, dict[str, Any]] = field(default_factory=dict)
