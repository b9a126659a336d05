"""The ``builtins.msgpack`` materializer: exact round trips of plain Python data trees."""

from __future__ import annotations

from typing import Any, ClassVar

from mlops_lite.core import values
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


class MsgpackMaterializer(Materializer):
    """None/bool/int/float/str/bytes/bytearray and list/tuple/dict/set/frozenset trees.

    The round trip is exact: tuples stay tuples, dict keys keep their type and
    order, ints of any size, floats always as float64 (NaN, inf and -0.0 kept bit
    for bit). One documented exception: a bytearray loads back as bytes (equal
    contents), because msgpack packs it as bin before any hook can see it.
    Anything else anywhere in the tree, or a tree that is cyclic or too deep,
    makes :meth:`can_save` false.
    """

    name: ClassVar[str] = "builtins.msgpack"
    version: ClassVar[int] = 1
    handled_types: ClassVar[tuple[type, ...]] = NATIVE_TYPES

    def can_save(self, value: Any) -> bool:
        # A trial pack in C is cheaper than walking the tree in Python, and it is the
        # only check that cannot disagree with save().
        """Whether the whole tree is made of the native types (a trial encoding)."""
        try:
            values.pack(value, values.MATERIALIZER)
        except values.ValueEncodeError:
            return False
        return True

    def can_save_type(self, cls: type) -> bool:
        """Whether ``cls`` is one of the native types."""
        return cls in NATIVE_TYPES

    def save(self, value: Any) -> bytes:
        """The exact msgpack encoding of ``value``."""
        try:
            return values.pack(value, values.MATERIALIZER)
        except values.ValueEncodeError as exc:
            raise MaterializerError(
                f"builtins.msgpack cannot save this {type(value).__qualname__}: {exc} "
                "(only exact None/bool/int/float/str/bytes/bytearray/list/tuple/dict/set/"
                "frozenset trees, not cyclic, are supported)"
            ) from exc

    def load(self, data: bytes | bytearray | memoryview) -> Any:
        """The value encoded by ``save``."""
        try:
            return values.unpack(data, values.MATERIALIZER)
        except values.ValueDecodeError as exc:
            raise MaterializerError(f"corrupt builtins.msgpack payload: {exc}") from exc
