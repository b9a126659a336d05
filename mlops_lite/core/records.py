"""Run and step records and their versioned msgpack encoding.

A record is stored as ``{"schema": 1, "kind": ..., "data": {field: value}}``.
Decoding trusts nothing: records arrive from teammates' pushes, so every field
is checked against its declared type, unknown fields are ignored (added later
within the same schema), and anything else is a ``RecordError`` naming the
record and the field. No input makes decoding raise anything else.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeVar

from mlops_lite.core import values
from mlops_lite.core.ids import ArtifactId, CacheKey
from mlops_lite.core.status import RunStatus, StepStatus
from mlops_lite.errors import RecordError, UnknownSchemaVersionError

__all__ = [
    "SCHEMA_VERSION",
    "OutputRecord",
    "RunRecord",
    "StepRecord",
    "StepSummary",
    "pack_value",
    "unpack_value",
]

SCHEMA_VERSION: Final = 1

_RecordT = TypeVar("_RecordT", bound="_Record")


def pack_value(value: Any) -> bytes:
    """Encode a JSON-like value exactly: tuples, big ints and int keys survive."""
    try:
        return values.pack(value, values.RECORDS)
    except values.ValueEncodeError as error:
        raise RecordError(f"cannot record a value: {error}") from None


def unpack_value(data: bytes | bytearray | memoryview, *, where: str = "record") -> Any:
    """Decode bytes written by ``pack_value``; a ``RecordError`` for anything else."""
    try:
        return values.unpack(data, values.RECORDS)
    except values.ValueDecodeError as error:
        raise RecordError(f"{where} is not valid: {error}") from None


class _Record:
    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The record's fields as plain values (nested records as dicts)."""
        names, nested = _layout(type(self))  # type: ignore[arg-type]
        data = {name: getattr(self, name) for name in names}
        for name in nested:
            data[name] = _plain(data[name])
        return data

    def encode(self) -> bytes:
        """The stored form: the schema envelope around ``to_dict()``."""
        return pack_value({"schema": SCHEMA_VERSION, "kind": self.kind, "data": self.to_dict()})

    @classmethod
    def decode(
        cls: type[_RecordT], data: bytes | bytearray | memoryview, *, where: str = "record"
    ) -> _RecordT:
        """Decode and validate a stored record of this kind."""
        envelope = unpack_value(data, where=where)
        if not isinstance(envelope, dict) or "schema" not in envelope:
            raise RecordError(f"{where} is not an mlops_lite record")
        schema = envelope["schema"]
        if schema != SCHEMA_VERSION:
            if type(schema) is int and schema > SCHEMA_VERSION:
                raise UnknownSchemaVersionError(
                    f"{where} uses record schema {schema}, but this mlops_lite reads schema "
                    f"{SCHEMA_VERSION}: upgrade mlops-lite (pip install -U mlops-lite) to read it"
                )
            raise RecordError(f"{where} has an invalid schema version {schema!r}")
        if envelope.get("kind") != cls.kind:
            raise RecordError(
                f"{where} is a {envelope.get('kind')!r} record, expected {cls.kind!r}"
            )
        return cls.from_dict(envelope.get("data"), where=where)

    @classmethod
    def from_dict(cls: type[_RecordT], data: Any, *, where: str = "record") -> _RecordT:
        """Build the record from ``to_dict()`` output, checking every field's type."""
        if not isinstance(data, dict):
            raise RecordError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
        checked: dict[str, Any] = {}
        for name, (checker, required) in _fields(cls).items():  # type: ignore[arg-type]
            if name not in data:
                if required:
                    raise RecordError(f"{where}: field {name!r} is missing")
                continue
            value = data[name]
            try:
                checked[name] = checker(value, where)
            except RecordError:
                # Checked again to say where: labelling every field up front cost a
                # third of indexing a run (a check is deterministic, so it fails again).
                checker(value, f"{where}: field {name!r}")
                raise
        return cls(**checked)


@functools.cache
def _fields(cls: type) -> dict[str, tuple[Checker, bool]]:
    """Each field's checker, and whether the field is required."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: (
            _checker(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    }


@functools.cache
def _layout(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A record type's field names, and those that may hold nested records."""
    hints = typing.get_type_hints(cls)
    names = tuple(f.name for f in dataclasses.fields(cls))
    nested = tuple(name for name in names if _holds_records(hints[name]))
    return names, nested


def _holds_records(hint: Any) -> bool:
    if isinstance(hint, type) and issubclass(hint, _Record):
        return True
    return any(_holds_records(argument) for argument in typing.get_args(hint))


def _plain(value: Any) -> Any:
    # Records nest one level deep (a dict of records), never inside other values.
    if isinstance(value, _Record):
        return value.to_dict()
    if type(value) is dict and value and isinstance(next(iter(value.values())), _Record):
        return {key: item.to_dict() for key, item in value.items()}
    return value


Checker = Callable[[Any, str], Any]


def _check(value: Any, hint: Any, where: str) -> Any:
    """``value`` if it fits ``hint`` (nested records built from dicts), else a RecordError."""
    return _checker(hint)(value, where)


@functools.cache
def _checker(hint: Any) -> Checker:
    """A function checking values against ``hint``, built once per type."""
    if hint is Any:
        return lambda value, where: value
    supertype = getattr(hint, "__supertype__", None)  # a NewType
    if supertype is not None:
        return _checker(supertype)
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [_checker(option) for option in arguments]
        optional = type(None) in arguments

        def check_union(value: Any, where: str) -> Any:
            if value is None and optional:
                return None  # `X | None` holding None: no failed try of X first
            for option in options:
                try:
                    return option(value, where)
                except RecordError:
                    continue
            raise RecordError(f"{where} has an unexpected {type(value).__name__}")

        return check_union
    if origin is typing.Literal:
        allowed = frozenset(arguments)

        def check_literal(value: Any, where: str) -> Any:
            if type(value) is str and value in allowed:
                return value
            raise RecordError(f"{where} is {value!r}, not one of {', '.join(map(str, arguments))}")

        return check_literal
    if origin is list:
        item = _checker(arguments[0])

        def check_list(value: Any, where: str) -> Any:
            if type(value) is not list:
                raise _wrong_type(where, hint, value)
            return [item(element, where) for element in value]

        return check_list
    if origin is dict:
        key_checker, item_checker = _checker(arguments[0]), _checker(arguments[1])

        def check_dict(value: Any, where: str) -> Any:
            if type(value) is not dict:
                raise _wrong_type(where, hint, value)
            try:
                return {
                    key_checker(key, where): item_checker(item, where)
                    for key, item in value.items()
                }
            except RecordError:
                for key, item in value.items():  # again, saying which item (see from_dict)
                    key_checker(key, where)
                    item_checker(item, f"{where}[{key!r}]")
                raise

        return check_dict
    if isinstance(hint, type) and issubclass(hint, _Record):
        record_type = hint
        return lambda value, where: record_type.from_dict(value, where=where)
    if hint is float:

        def check_float(value: Any, where: str) -> Any:
            if type(value) in (int, float):
                return float(value)
            raise _wrong_type(where, hint, value)

        return check_float
    if hint in (int, str, bool, bytes, type(None), None):
        exact = type(None) if hint is None else hint

        def check_exact(value: Any, where: str) -> Any:
            if type(value) is exact:
                return value
            raise _wrong_type(where, hint, value)

        return check_exact
    raise AssertionError(f"records cannot declare fields of type {hint!r}")


def _wrong_type(where: str, hint: Any, value: Any) -> RecordError:
    return RecordError(f"{where} should be {_describe(hint)}, not {type(value).__name__}")


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


@dataclass
class OutputRecord(_Record):
    """One output of a step: which artifact holds it and how it was written."""

    kind: ClassVar[str] = "output"
    artifact_id: ArtifactId
    materializer: str
    materializer_version: int
    type_name: str
    size: int
    uses_pickle: bool = False
    # xxh3-128 of the payload, checked on every load (None: recorded before digests).
    digest: str | None = None


@dataclass
class StepSummary(_Record):
    """What the run record keeps of each finished step, so indexing a run reads one record."""

    kind: ClassVar[str] = "step-summary"
    status: StepStatus
    cache_key: CacheKey | None = None
    outputs: dict[str, OutputRecord] = field(default_factory=dict)
    end_time: float | None = None
    # What the step logged with log_metadata(): metrics in run listings come from here
    # (for a cache hit: the metadata of the execution it reuses).
    metadata: dict[Any, Any] = field(default_factory=dict)
    # What a cache hit on this step needs besides, so reusing it reads no step record.
    # None: a run recorded before these were summarized (read the step record).
    data_files: dict[str, str] | None = None
    cached_from: dict[str, str] | None = None


@dataclass
class StepRecord(_Record):
    """What happened to one step invocation in a run."""

    kind: ClassVar[str] = "step"
    name: str
    function: str
    status: StepStatus
    cached: bool = False
    cache_key: CacheKey | None = None
    code_fingerprint: str | None = None
    parameters: dict[Any, Any] = field(default_factory=dict)
    # argument -> {"artifact_id", "step", "output"}
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    outputs: dict[str, OutputRecord] = field(default_factory=dict)
    upstream: list[str] = field(default_factory=list)
    start_time: float | None = None
    end_time: float | None = None
    metadata: dict[Any, Any] = field(default_factory=dict)
    # For a cache hit: ``metadata`` is that of the execution it reuses, not its own.
    metadata_inherited: bool = False
    # Files of the work tree the step read: {path relative to the root: content id}.
    data_files: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    # For a cache hit: the run (pipeline, run name, step) that produced the outputs.
    cached_from: dict[str, str] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    # How many times the step was tried (retries, dead workers, timeouts).
    attempts: int = 1

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, when both are known."""
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    def summary(self) -> StepSummary:
        """What the run record keeps of this step."""
        return StepSummary(
            self.status,
            self.cache_key,
            dict(self.outputs),
            self.end_time,
            metadata=dict(self.metadata),
            data_files=dict(self.data_files),
            cached_from=self.cached_from,
        )


@dataclass
class RunRecord(_Record):
    """Everything about a run except its steps, which have records of their own."""

    kind: ClassVar[str] = "run"
    run_name: str
    pipeline_name: str
    status: RunStatus
    start_time: float
    end_time: float | None = None
    parameters: dict[Any, Any] = field(default_factory=dict)
    step_names: list[str] = field(default_factory=list)
    code: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    metadata: dict[Any, Any] = field(default_factory=dict)
    entry_point: dict[str, Any] = field(default_factory=dict)
    config: dict[Any, Any] = field(default_factory=dict)
    enable_cache: bool = True
    orchestrator: str = "local"
    author: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    reproduces: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Per finished step, copied from the step records: indexing a run reads one
    # record, not one per step.
    step_summary: dict[str, StepSummary] = field(default_factory=dict)
