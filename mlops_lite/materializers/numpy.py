"""The ``numpy.npy`` and ``numpy.scalar`` materializers: arrays and scalars as .npy, not pickle."""

from __future__ import annotations

import io
import math
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

from mlops_lite.core.payload import Payload
from mlops_lite.errors import MaterializerError
from mlops_lite.materializers.base import Materializer

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["NumpyArrayMaterializer", "NumpyScalarMaterializer"]


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MaterializerError(
            "this artifact holds a numpy value but numpy is not installed: pip install numpy"
        ) from exc
    return numpy


def _is_plain_ndarray(value: Any) -> bool:
    # Subclasses (matrix, MaskedArray, recarray) would lose their class or mask in a
    # .npy file, so only ndarray itself and memmap (loaded as a plain ndarray) qualify.
    np = _numpy()
    return type(value) is np.ndarray or type(value) is np.memmap


def _encode_npy(array: NDArray[Any]) -> bytes | Payload:
    """Return ``array`` as a .npy file, byte-identical to ``numpy.save(allow_pickle=False)``.

    The data is not copied: the payload is the header and a read-only view of
    the array's memory (a non-contiguous array is made contiguous first).
    """
    np = _numpy()
    fmt = np.lib.format
    if array.dtype.hasobject:
        raise MaterializerError(f"numpy.npy refuses dtype {array.dtype} (it holds Python objects)")
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    header_data = fmt.header_data_from_array_1_0(array)
    header = io.BytesIO()
    try:
        fmt.write_array_header_1_0(header, header_data)
    except ValueError:
        # Huge structured dtypes; anything rarer (utf-8 field names) takes np.save.
        header = io.BytesIO()
        try:
            fmt.write_array_header_2_0(header, header_data)
        except (ValueError, UnicodeEncodeError):
            return _encode_with_numpy_save(array)
    except UnicodeEncodeError:
        return _encode_with_numpy_save(array)
    if array.nbytes == 0:
        return header.getvalue()
    # The .npy body is the memory in header order: a Fortran-ordered array's
    # transpose is C-contiguous over the same bytes.
    body = array.T if header_data["fortran_order"] else array
    flat = body.reshape(-1).view(np.uint8)
    return Payload([header.getvalue(), memoryview(flat)])


def _encode_with_numpy_save(array: NDArray[Any]) -> bytes:
    np = _numpy()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # "Stored array in format 3.0": expected for utf-8 field names, not news.
        warnings.simplefilter("ignore", UserWarning)
        np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _decode_npy(data: bytes | bytearray | memoryview) -> NDArray[Any]:
    """Read a .npy payload into a writable array, without pickle.

    A writable buffer (bytearray, writable memoryview) is used in place; read-only
    bytes are copied once, because callers expect to modify what they load.
    Whatever the header says, a payload that is not a plain .npy is a
    ``MaterializerError``: numpy's header parser raises anything from
    ``SyntaxError`` to ``tokenize.TokenError`` on malformed input.
    """
    try:
        return _decode_npy_checked(data)
    except MaterializerError:
        raise
    except Exception as exc:  # numpy's parsers, on bytes nobody vouches for
        raise MaterializerError(f"corrupt numpy.npy payload: {type(exc).__name__}: {exc}") from None


def _decode_npy_checked(data: bytes | bytearray | memoryview) -> NDArray[Any]:
    np = _numpy()
    fmt = np.lib.format
    view = memoryview(data).cast("B")
    header_end = _header_end(view)
    # Only the header goes through BytesIO: wrapping the whole payload would copy it.
    stream = io.BytesIO(view[:header_end])
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = fmt.read_array_header_1_0(stream, header_end)
        elif version == (2, 0):
            shape, fortran_order, dtype = fmt.read_array_header_2_0(stream, header_end)
        else:
            # 3.0 (utf-8 field names) has no public header reader.
            return _decode_with_numpy_load(view)
    except (ValueError, SyntaxError) as exc:
        raise MaterializerError(f"corrupt numpy.npy payload: {exc}") from None
    if dtype.hasobject:
        raise MaterializerError("numpy.npy payload declares an object dtype; refusing to unpickle")
    offset = stream.tell()
    count = math.prod(shape)
    size = count * dtype.itemsize
    if len(view) - offset != size:
        raise MaterializerError(
            f"corrupt numpy.npy payload: {len(view) - offset} data bytes, expected {size}"
        )
    result: NDArray[Any]
    if size == 0:
        result = np.zeros(shape, dtype=dtype, order="F" if fortran_order else "C")
        return result
    body = view[offset:] if not view.readonly else bytearray(view[offset:])
    flat = np.frombuffer(body, dtype=dtype, count=count)
    # Same reshaping as numpy.lib.format.read_array: no copy either way.
    result = flat.reshape(shape[::-1]).transpose() if fortran_order else flat.reshape(shape)
    return result


def _header_end(view: memoryview) -> int:
    """Byte offset where the array data starts: magic(6) version(2) length(2 or 4) header."""
    if len(view) < 10 or bytes(view[:6]) != b"\x93NUMPY":
        raise MaterializerError("corrupt numpy.npy payload: missing the .npy magic string")
    if view[6] == 1:
        return 10 + int.from_bytes(view[8:10], "little")
    if len(view) < 12:
        raise MaterializerError("corrupt numpy.npy payload: truncated header")
    return 12 + int.from_bytes(view[8:12], "little")


def _decode_with_numpy_load(view: memoryview) -> NDArray[Any]:
    np = _numpy()
    try:
        array: NDArray[Any] = np.load(io.BytesIO(view), allow_pickle=False)
    except ValueError as exc:
        raise MaterializerError(f"corrupt numpy.npy payload: {exc}") from exc
    return array


class NumpyArrayMaterializer(Materializer):
    """``numpy.ndarray`` without Python objects in its dtype, as a standard .npy file.

    Keeps dtype (byte order and structured fields included), shape (0-d and empty
    included) and Fortran order exactly. Object arrays fall through to cloudpickle.
    """

    name: ClassVar[str] = "numpy.npy"
    version: ClassVar[int] = 1
    handled_type_names: ClassVar[tuple[str, ...]] = ("numpy.ndarray",)

    def can_save(self, value: Any) -> bool:
        """Whether the array can be written as ``.npy`` without pickling (no object dtype)."""
        return _is_plain_ndarray(value) and not value.dtype.hasobject

    def can_save_type(self, cls: type) -> bool:
        """Any ndarray type, as far as its type says."""
        return cls.__module__ == "numpy" and cls.__qualname__ in ("ndarray", "memmap")

    def save(self, value: Any) -> bytes:
        """The array as ``.npy`` bytes."""
        return bytes(self.save_payload(value))

    def save_payload(self, value: Any) -> bytes | Payload:
        """The array as ``.npy``: its header and a read-only view of its memory, not copied."""
        if type(self).save is not NumpyArrayMaterializer.save:
            return self.save(value)  # a subclass that writes other bytes
        if not self.can_save(value):
            raise MaterializerError(
                "numpy.npy saves plain ndarrays without object dtype, "
                f"not {type(value).__qualname__}"
            )
        return _encode_npy(value)

    def load(self, data: bytes | bytearray | memoryview) -> Any:
        """The array written by ``save``."""
        return _decode_npy(data)


class NumpyScalarMaterializer(Materializer):
    """numpy scalars (``np.float64(1.5)``, ``np.int32(3)``, ``np.datetime64``...) exactly.

    Stored as the .npy file of the 0-d array and loaded back with ``[()]``, so the
    scalar type is kept; without this they would fall to pickle.
    """

    name: ClassVar[str] = "numpy.scalar"
    version: ClassVar[int] = 1
    handled_type_names: ClassVar[tuple[str, ...]] = ("numpy.generic",)

    def can_save(self, value: Any) -> bool:
        """Whether the scalar has a numeric or boolean dtype."""
        np = _numpy()
        return isinstance(value, np.generic) and not np.asarray(value).dtype.hasobject

    def save(self, value: Any) -> bytes:
        """The scalar as a zero-dimensional ``.npy``."""
        if not self.can_save(value):
            raise MaterializerError(f"numpy.scalar cannot save {type(value).__qualname__}")
        return bytes(_encode_npy(_numpy().asarray(value)))

    def load(self, data: bytes | bytearray | memoryview) -> Any:
        """The scalar written by ``save``."""
        array = _decode_npy(data)
        if array.shape != ():
            raise MaterializerError(f"numpy.scalar payload has shape {array.shape}, expected ()")
        return array[()]
