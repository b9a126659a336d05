"""The msgpack encoding of plain Python values, shared by records and the builtin materializer.

msgpack alone cannot tell a tuple from a list or hold an int past 64 bits, so
both users add extension types, with the same codes::

    1  tuple      the items, as a msgpack array
    2  big int    records: decimal text; builtins.msgpack: two's complement, big-endian
    3  set        builtins.msgpack only: the items' encodings sorted, as an array
    4  frozenset  builtins.msgpack only

The two big int forms are a historical fact of the stored formats (a record of
schema 1 and a ``builtins.msgpack`` v1 payload), kept apart by ``Dialect``.

Decoding never recurses deeply on the C stack: msgpack's unpacker keeps a
32 KiB frame per call, so decoding nested extension types by calling it from its
own hook killed the interpreter at ~250 levels (~30 in a 1 MiB thread). Past a
few levels, extension payloads are decoded one after the other instead, and
assembled bottom-up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "MATERIALIZER",
    "MAX_EXT_DEPTH",
    "RECORDS",
    "Dialect",
    "ValueDecodeError",
    "ValueEncodeError",
    "is_recordable",
    "pack",
    "unpack",
]

EXT_TUPLE: Final = 1
EXT_BIGINT: Final = 2
EXT_SET: Final = 3
EXT_FROZENSET: Final = 4

# Levels of nested tuples/sets a value may have; each is a nested msgpack
# document. Plain list/dict nesting is capped by msgpack itself (511 to pack).
MAX_EXT_DEPTH: Final = 200

# The C unpacker refuses 1024 nested list/dict levels while the packer still
# writes them; a document shorter than this many bytes cannot be that deep.
_UNPACK_STACK_LIMIT: Final = 1024

# Lone surrogates ("\ud800") are valid Python str but not UTF-8; surrogatepass
# keeps them exact instead of failing.
_UNICODE_ERRORS: Final = "surrogatepass"


class ValueEncodeError(ValueError):
    """A value holds something its dialect cannot encode (its caller says which value)."""


class ValueDecodeError(ValueError):
    """Bytes that are not a valid encoding in the dialect."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """Which extension types a stored format uses, and how it writes big ints."""

    name: str
    bigint_as_text: bool
    sets: bool
    # Record a str/dict/list/... subclass as its base type (records), or refuse
    # it so that another materializer keeps its type (builtins.msgpack).
    subclasses_as_base: bool


RECORDS: Final = Dialect("records", bigint_as_text=True, sets=False, subclasses_as_base=True)
MATERIALIZER: Final = Dialect(
    "builtins.msgpack", bigint_as_text=False, sets=True, subclasses_as_base=False
)

_BASES: Final[tuple[type[Any], ...]] = (dict, list, bytes, float)


class _Encoder:
    """One ``pack``: a packer per nesting level, so a nested pack never re-enters a busy packer."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._packers: list[Any] = []
        self._depth = 0

    def pack(self, value: Any) -> bytes:
        import msgpack

        if self._depth >= MAX_EXT_DEPTH:
            raise ValueEncodeError(f"data nested deeper than {MAX_EXT_DEPTH} tuple/set levels")
        if self._depth == len(self._packers):
            self._packers.append(
                msgpack.Packer(
                    default=self._default,
                    use_bin_type=True,
                    strict_types=True,
                    unicode_errors=_UNICODE_ERRORS,
                )
            )
        packer = self._packers[self._depth]
        self._depth += 1
        try:
            document = bytes(packer.pack(value))
        finally:
            self._depth -= 1
        if len(document) >= _UNPACK_STACK_LIMIT:
            _check_nesting(document)
        return document

    def _default(self, value: Any) -> Any:
        import msgpack

        kind = type(value)
        if kind is tuple:
            return msgpack.ExtType(EXT_TUPLE, self.pack(list(value)))
        if kind is int:  # only reached past 64 bits
            if self.dialect.bigint_as_text:
                return msgpack.ExtType(EXT_BIGINT, str(value).encode())
            length = (value.bit_length() + 8) // 8
            return msgpack.ExtType(EXT_BIGINT, value.to_bytes(length, "big", signed=True))
        if (kind is set or kind is frozenset) and self.dialect.sets:
            # Sorted by encoding: equal sets encode identically whatever their
            # iteration order (which depends on hashing and insertion history).
            items = sorted(self.pack(item) for item in value)
            header = msgpack.Packer().pack_array_header(len(items))
            return msgpack.ExtType(
                EXT_SET if kind is set else EXT_FROZENSET, b"".join([header, *items])
            )
        if self.dialect.subclasses_as_base:
            if isinstance(value, int) and not isinstance(value, bool):
                return int(value)
            if isinstance(value, tuple):
                return tuple(value)
            if isinstance(value, str):
                return str.__str__(value)  # an exact str copy, whatever __str__ the subclass has
            for base in _BASES:
                if isinstance(value, base):
                    return base(value)
        raise ValueEncodeError(
            f"{kind.__module__}.{kind.__qualname__} cannot be encoded as {self.dialect.name}"
        )


def _check_nesting(document: bytes) -> None:
    """Refuse a document the unpacker could not read back (skip() builds no objects)."""
    import msgpack

    unpacker = msgpack.Unpacker(max_buffer_size=len(document))
    unpacker.feed(document)
    try:
        unpacker.skip()
    except (ValueError, msgpack.exceptions.UnpackException) as error:
        raise ValueEncodeError(f"data nested too deeply to read back: {error}") from None


_ENCODE_ERRORS: Final = (TypeError, ValueError, OverflowError, RecursionError)


def pack(value: Any, dialect: Dialect) -> bytes:
    """Encode ``value`` exactly: tuples, big ints, int keys (and sets, if the dialect has them)."""
    try:
        return _Encoder(dialect).pack(value)
    except ValueEncodeError:
        raise
    except _ENCODE_ERRORS as error:
        raise ValueEncodeError(str(error)) from error


class _Pending:
    """An extension value whose contents are decoded (or assembled) after the document."""

    __slots__ = ("code", "data", "depth", "items", "value")

    def __init__(
        self, code: int, depth: int, data: bytes | None = None, items: list[Any] | None = None
    ) -> None:
        self.code = code
        self.depth = depth
        self.data = data
        self.items = items
        self.value: Any = None


# Extension payloads nested up to this many levels are decoded straight from the
# hook (8 x 32 KiB of C stack at most); deeper ones wait for the loop in decode().
_RECURSION: Final = 8


class _Decoder:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.pending: list[_Pending] = []
        self.base_depth = 0  # the depth of the document decode() is working on
        self.nesting = 0  # hook calls open on the C stack right now
        known = {EXT_TUPLE, EXT_BIGINT, *((EXT_SET, EXT_FROZENSET) if dialect.sets else ())}
        self._known = frozenset(known)
        import msgpack

        self._unpackb = functools.partial(
            msgpack.unpackb, raw=False, use_list=True, strict_map_key=False, ext_hook=self.hook,
            unicode_errors=_UNICODE_ERRORS,
        )  # fmt: skip

    def hook(self, code: int, data: bytes) -> Any:
        nesting = self.nesting
        if code == EXT_TUPLE and nesting < _RECURSION and self.base_depth + nesting < MAX_EXT_DEPTH:
            # The common case, kept short: a tuple decoded in place.
            before = len(self.pending)
            self.nesting = nesting + 1
            items = self.unpack_document(data)
            self.nesting = nesting
            if len(self.pending) == before and type(items) is list:
                return tuple(items)
            return self._defer(code, nesting, items=items)
        if code not in self._known:
            raise ValueDecodeError(
                f"unknown msgpack extension type {code} in {self.dialect.name} data"
            )
        if self.base_depth + nesting >= MAX_EXT_DEPTH:
            raise ValueDecodeError(f"data nested deeper than {MAX_EXT_DEPTH} tuple/set levels")
        if code == EXT_BIGINT:
            return self._bigint(data)
        if nesting >= _RECURSION:
            return self._defer(code, nesting, data=data)
        before = len(self.pending)
        self.nesting = nesting + 1
        items = self.unpack_document(data)
        self.nesting = nesting
        if len(self.pending) == before:
            return self._build(code, items)
        return self._defer(code, nesting, items=items)

    def _defer(
        self, code: int, nesting: int, *, data: bytes | None = None, items: Any = None
    ) -> _Pending:
        """A value assembled after the document: deeper payloads are still to decode."""
        item = _Pending(
            code,
            self.base_depth + nesting + 1,
            data=data,
            items=self._items(items) if data is None else None,
        )
        self.pending.append(item)
        return item

    def unpack_document(self, data: bytes | bytearray | memoryview) -> Any:
        return self._unpackb(data)

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        root: Any = self.unpack_document(data)
        if not self.pending:
            return root
        # Deferred payloads, one document at a time; decoding one may defer more,
        # which are appended and reached by this same loop.
        position = 0
        while position < len(self.pending):
            item = self.pending[position]
            position += 1
            if item.items is None:
                self.base_depth = item.depth
                assert item.data is not None
                item.items = self._items(self.unpack_document(item.data))
        # Deepest first: every value's contents are complete when it is built.
        for item in sorted(self.pending, key=lambda pending: -pending.depth):
            item.value = self._build(item.code, _resolve(item.items))
        return _resolve(root)

    @staticmethod
    def _items(document: Any) -> list[Any]:
        if not isinstance(document, list):
            raise ValueDecodeError("a tuple or set extension does not hold an array")
        return document

    def _build(self, code: int, items: Any) -> Any:
        items = self._items(items)
        if code == EXT_TUPLE:
            return tuple(items)
        try:
            return set(items) if code == EXT_SET else frozenset(items)
        except TypeError as error:  # an unhashable member
            raise ValueDecodeError(f"invalid set member: {error}") from None

    def _bigint(self, data: bytes) -> int:
        if self.dialect.bigint_as_text:
            text = data.decode("ascii", "strict")
            if not 0 < len(text) <= 10_000 or not text.lstrip("-").isdigit():
                raise ValueDecodeError("a big int extension does not hold decimal digits")
            return int(text)
        return int.from_bytes(data, "big", signed=True)


def _resolve(value: Any) -> Any:
    """``value`` with each pending extension replaced by what it became (in place, no recursion)."""
    if isinstance(value, _Pending):
        return value.value
    if not isinstance(value, (list, dict)):
        return value
    stack: list[list[Any] | dict[Any, Any]] = [value]
    while stack:
        container = stack.pop()
        if isinstance(container, list):
            for position, item in enumerate(container):
                if isinstance(item, _Pending):
                    container[position] = item.value
                elif isinstance(item, (list, dict)):
                    stack.append(item)
            continue
        if any(isinstance(key, _Pending) for key in container):
            entries = list(container.items())
            container.clear()
            for key, item in entries:
                key = key.value if isinstance(key, _Pending) else key
                try:
                    container[key] = item
                except TypeError as error:
                    raise ValueDecodeError(f"invalid map key: {error}") from None
        for key, item in container.items():
            if isinstance(item, _Pending):
                container[key] = item.value
            elif isinstance(item, (list, dict)):
                stack.append(item)
    return value


class _HasExtension(Exception):
    """The document holds an extension: the full decoder reads it."""


def _no_extension(code: int, data: bytes) -> Any:
    raise _HasExtension


@functools.cache
def _plain_unpackb() -> Callable[[bytes | bytearray | memoryview], Any]:
    """``msgpack.unpackb`` as ``_Decoder`` calls it, for documents without extensions."""
    import msgpack

    return functools.partial(
        msgpack.unpackb, raw=False, use_list=True, strict_map_key=False,
        ext_hook=_no_extension, unicode_errors=_UNICODE_ERRORS,
    )  # fmt: skip


def unpack(data: bytes | bytearray | memoryview, dialect: Dialect) -> Any:
    """Decode bytes written by ``pack`` with the same dialect.

    Raises ``ValueDecodeError`` for anything else: truncated or trailing bytes,
    unknown extension types, nesting past the limits, invalid UTF-8.
    """
    import msgpack

    try:
        try:
            # Most documents hold no extension at all (a run's parameters, its
            # metrics): one C call, without the decoder a tuple or set needs.
            return _plain_unpackb()(data)
        except _HasExtension:
            return _Decoder(dialect).decode(data)
    except ValueDecodeError:
        raise
    except (msgpack.exceptions.UnpackException, ValueError, TypeError, UnicodeDecodeError) as error:
        raise ValueDecodeError(f"not valid {dialect.name} data: {error}") from None


def is_recordable(value: Any, _depth: int = 0) -> bool:
    """True for the JSON-like values a record holds and gives back unchanged."""
    if _depth > 100:
        return False
    kind = type(value)
    if value is None or kind in (bool, int, float, str, bytes):
        return True
    if kind in (list, tuple):
        return all(is_recordable(item, _depth + 1) for item in value)
    if kind is dict:
        return all(
            type(key) in (str, int, bool, float, bytes, tuple)
            and is_recordable(key, _depth + 1)
            and is_recordable(item, _depth + 1)
            for key, item in value.items()
        )
    return False
