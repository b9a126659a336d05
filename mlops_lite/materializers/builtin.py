"""The ``builtins.msgpack`` materializer: exact round trips of plain Python data trees."""

from __future__ import annotations

from typing import Any, ClassVar

from mlops_lite.errors import MaterializerError
from mlops_lite.materializers.base import Materializer

__all__ = ["NATIVE_TYPES", "MsgpackMaterializer"]

# Exact types only: subclasses (IntEnum, numpy.float64, a str subclass) would come
# back as their base type, so they are left to other materializers.
NATIVE_TYPES: tuple[type, ...] = (
    type(None),
    bool,
    int,
    float,
    str,
    bytes,
    bytearray,  # loads back as bytes: msgpack packs it as bin before any hook
    list,
    tuple,
    dict,
    set,
    frozenset,
)

# msgpack ext type codes; part of the byte format (bump `version` to change them).
_EXT_TUPLE = 1
_EXT_BIGINT = 2
_EXT_SET = 3
_EXT_FROZENSET = 4

# Levels of nested tuple/set/frozenset (each one a nested msgpack document); the
# msgpack packer separately caps plain list/dict nesting at 511 per document, which
# is what stops a self-referencing list.
_MAX_EXT_DEPTH = 200

# The C unpacker refuses 1024 nested list/dict levels while the packer still writes
# them; a document shorter than this many bytes cannot be that deep.
_UNPACK_STACK_LIMIT = 1024

# Lone surrogates ("\ud800") are valid Python str but not UTF-8; surrogatepass keeps
# them exact instead of failing.
_UNICODE_ERRORS = "surrogatepass"


class _Encoder:
    """One save: a packer per nesting level, so a nested pack never re-enters a busy packer."""

    def __init__(self) -> None:
        self._packers: list[Any] = []
        self._depth = 0

    def pack(self, value: Any) -> bytes:
        import msgpack

        if self._depth >= _MAX_EXT_DEPTH:
            raise ValueError(f"data nested deeper than {_MAX_EXT_DEPTH} tuple/set levels")
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
            return msgpack.ExtType(_EXT_TUPLE, self.pack(list(value)))
        if kind is int:
            # Only reached past 64 bits: minimal two's complement, big-endian.
            length = (value.bit_length() + 8) // 8
            return msgpack.ExtType(_EXT_BIGINT, value.to_bytes(length, "big", signed=True))
        if kind is set or kind is frozenset:
            # Sorting by encoded bytes makes equal sets encode identically whatever
            # their iteration order (which depends on hashing and insertion history).
            items = sorted(self.pack(item) for item in value)
            header = msgpack.Packer().pack_array_header(len(items))
            code = _EXT_SET if kind is set else _EXT_FROZENSET
            return msgpack.ExtType(code, b"".join([header, *items]))
        raise TypeError(f"{kind.__module__}.{kind.__qualname__} is not a msgpack-native type")


def _check_nesting(document: bytes) -> None:
    """Refuse a document the unpacker could not read back (skip() builds no objects)."""
    import msgpack

    unpacker = msgpack.Unpacker(max_buffer_size=len(document))
    unpacker.feed(document)
    unpacker.skip()


def _unpack(data: bytes | bytearray | memoryview) -> Any:
    import msgpack

    return msgpack.unpackb(
        data,
        raw=False,
        use_list=True,
        strict_map_key=False,
        ext_hook=_ext_hook,
        unicode_errors=_UNICODE_ERRORS,
    )


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_TUPLE:
        return tuple(_unpack(data))
    if code == _EXT_BIGINT:
        return int.from_bytes(data, "big", signed=True)
    if code == _EXT_SET:
        return set(_unpack(data))
    if code == _EXT_FROZENSET:
        return frozenset(_unpack(data))
    raise MaterializerError(f"builtins.msgpack payload has unknown ext type {code}")


# What packing raises for a value outside the supported trees: an unknown type
# (TypeError), too deep or cyclic (ValueError from msgpack, RecursionError).
_PACK_ERRORS = (TypeError, ValueError, OverflowError, RecursionError)


class MsgpackMaterializer(Materializer):
    """None/bool/int/float/str/bytes/bytearray and list/tuple/dict/set/frozenset trees.

    The round trip is exact: tuples stay tuples, dict keys keep their type and
    order, ints of any size, floats always as float64 (NaN, inf and -0.0 kept bit
    for bit). One documented exception: a bytearray loads back as bytes (equal
    contents), because msgpack packs it as bin before any hook can see it. Anything else anywhere in the tree, or a
    tree that is cyclic or too deep, makes :meth:`can_save` false.
    """

    name: ClassVar[str] = "builtins.msgpack"
    version: ClassVar[int] = 1
    handled_types: ClassVar[tuple[type, ...]] = NATIVE_TYPES

    def can_save(self, value: Any) -> bool:
        # A trial pack in C is cheaper than walking the tree in Python, and it is the
        # only check that cannot disagree with save().
        try:
            _Encoder().pack(value)
        except _PACK_ERRORS:
            return False
        return True

    def can_save_type(self, cls: type) -> bool:
        return cls in NATIVE_TYPES

    def save(self, value: Any) -> bytes:
        try:
            return _Encoder().pack(value)
        except _PACK_ERRORS as exc:
            raise MaterializerError(
                f"builtins.msgpack cannot save this {type(value).__qualname__}: {exc} "
                "(only exact None/bool/int/float/str/bytes/bytearray/list/tuple/dict/set/"
                "frozenset trees, not cyclic, are supported)"
            ) from exc

    def load(self, data: bytes | bytearray | memoryview) -> Any:
        import msgpack

        try:
            return _unpack(data)
        except (msgpack.exceptions.UnpackException, ValueError, TypeError) as exc:
            raise MaterializerError(f"corrupt builtins.msgpack payload: {exc}") from exc
