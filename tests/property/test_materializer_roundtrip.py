"""Property tests: every builtin materializer gives back exactly what it was given."""

from __future__ import annotations

import copy
import io
import math
import struct
import warnings
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mlops_lite.materializers import (
    MsgpackMaterializer,
    NumpyArrayMaterializer,
    NumpyScalarMaterializer,
    materializer_for_value,
)

np = pytest.importorskip("numpy")
hnp = pytest.importorskip("hypothesis.extra.numpy")

MSGPACK = MsgpackMaterializer()
NPY = NumpyArrayMaterializer()
SCALAR = NumpyScalarMaterializer()


def canonical(value: Any) -> Any:
    """A comparable form of a native tree that keeps every distinction a round trip must keep.

    Floats compare by their bits (NaN == NaN of the same payload, -0.0 != 0.0), every
    item carries its exact type (1, 1.0 and True differ; tuple and list differ), dicts
    keep their order, sets are sorted so their iteration order does not matter.
    """
    kind = type(value)
    if kind is float:
        return ("float", struct.pack(">d", value))
    if kind in (type(None), bool, int, str, bytes):
        return (kind.__name__, value)
    if kind in (list, tuple):
        return (kind.__name__, tuple(canonical(item) for item in value))
    if kind is dict:
        return ("dict", tuple((canonical(k), canonical(v)) for k, v in value.items()))
    if kind in (set, frozenset):
        return (kind.__name__, tuple(sorted((canonical(item) for item in value), key=repr)))
    raise TypeError(f"not a native tree: {kind}")


# -- strategies ---------------------------------------------------------------

special_floats = st.sampled_from([math.nan, -math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324])
floats = st.floats(allow_nan=True, allow_infinity=True) | special_floats
ints = (
    st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1])
)
# Lone surrogates included: valid Python str, invalid UTF-8.
texts = st.text(st.characters(exclude_categories=()), max_size=8)
leaves = st.none() | st.booleans() | ints | floats | texts | st.binary(max_size=8)

# Set members and dict keys must be hashable: no lists, dicts or sets inside.
hashables = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(hashables, children, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
    )


native_trees = st.recursive(leaves, _containers, max_leaves=25)


# -- the helper itself must be able to tell values apart -------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ([1], (1,)),
        (1, True),
        (1, 1.0),
        (0.0, -0.0),
        ("a", b"a"),
        ({1: 1, 2: 2}, {2: 2, 1: 1}),
        ({1}, frozenset({1})),
        ({"1": 0}, {1: 0}),
    ],
)
def test_canonical_distinguishes_what_round_trips_must_keep(left: Any, right: Any) -> None:
    assert canonical(left) != canonical(right)


def test_canonical_treats_nan_as_equal_to_itself() -> None:
    assert canonical([math.nan]) == canonical([float("nan")])


# -- builtins.msgpack -----------------------------------------------------------


@given(native_trees)
def test_msgpack_round_trip_is_exact(value: Any) -> None:
    assert MSGPACK.can_save(value)
    assert canonical(MSGPACK.load(MSGPACK.save(value))) == canonical(value)


@given(native_trees)
def test_msgpack_loads_from_bytearray_and_memoryview(value: Any) -> None:
    payload = MSGPACK.save(value)
    assert canonical(MSGPACK.load(bytearray(payload))) == canonical(value)
    assert canonical(MSGPACK.load(memoryview(payload))) == canonical(value)


@given(native_trees)
def test_msgpack_save_is_deterministic(value: Any) -> None:
    assert MSGPACK.save(value) == MSGPACK.save(copy.deepcopy(value))


@given(st.lists(hashables, max_size=12))
def test_equal_sets_encode_identically_whatever_their_insertion_order(items: list[Any]) -> None:
    # (None, 0) == (None, False): such a set keeps whichever came first, so the two
    # orders would build different values, not the same one.
    assume(len(set(items)) == len({canonical(item) for item in items}))
    forward = MSGPACK.save(set(items))
    backward = MSGPACK.save(set(reversed(items)))
    assert forward == backward
    assert MSGPACK.save(frozenset(items)) == MSGPACK.save(frozenset(reversed(items)))


@given(native_trees)
def test_native_trees_choose_msgpack(value: Any) -> None:
    assert materializer_for_value(value).name == "builtins.msgpack"


# -- numpy.npy --------------------------------------------------------------------

array_dtypes = (
    hnp.boolean_dtypes()
    | hnp.integer_dtypes(endianness="?")
    | hnp.unsigned_integer_dtypes(endianness="?")
    | hnp.floating_dtypes(endianness="?")
    | hnp.complex_number_dtypes(endianness="?")
    | hnp.datetime64_dtypes(endianness="?")
    | hnp.timedelta64_dtypes(endianness="?")
    | hnp.byte_string_dtypes(min_len=1)
    | hnp.unicode_string_dtypes(endianness="?", min_len=1)
    | hnp.array_dtypes(hnp.scalar_dtypes(), min_size=1, max_size=3)
)
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)


@st.composite
def numpy_arrays(draw: st.DrawFn) -> Any:
    array = draw(hnp.arrays(array_dtypes, shapes))
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    if layout == "F":
        array = np.asfortranarray(array)
    elif layout == "strided" and array.ndim and array.shape[0] > 1:
        array = array[::2]
    return array


def _numpy_save(array: Any) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # format 3.0 for utf-8 field names
        np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _assert_identical(loaded: Any, original: Any) -> None:
    assert type(loaded) is np.ndarray
    assert loaded.dtype == original.dtype  # byte order and field layout included
    assert loaded.dtype.str == original.dtype.str
    assert loaded.shape == original.shape
    # Bytes, not ==: NaN payloads and -0.0 must survive too.
    assert loaded.tobytes() == original.tobytes()
    assert loaded.flags.writeable


@given(numpy_arrays())
def test_npy_round_trip_is_exact(array: Any) -> None:
    payload = NPY.save(array)
    _assert_identical(NPY.load(payload), array)
    _assert_identical(NPY.load(bytearray(payload)), array)
    _assert_identical(NPY.load(memoryview(payload)), array)


@given(numpy_arrays())
def test_npy_keeps_fortran_order(array: Any) -> None:
    loaded = NPY.load(NPY.save(array))
    if array.flags.f_contiguous and not array.flags.c_contiguous:
        assert loaded.flags.f_contiguous and not loaded.flags.c_contiguous


@given(numpy_arrays())
def test_npy_payload_is_the_standard_npy_file(array: Any) -> None:
    """Byte-identical to numpy.save: readable by any tool, and deterministic."""
    payload = NPY.save(array)
    assert payload == _numpy_save(array)
    assert payload == NPY.save(array.copy(order="K"))


@given(numpy_arrays())
def test_plain_arrays_choose_npy(array: Any) -> None:
    assert materializer_for_value(array).name == "numpy.npy"


@given(hnp.arrays(hnp.scalar_dtypes(), ()))
def test_numpy_scalars_round_trip_with_their_type(zero_d: Any) -> None:
    scalar = zero_d[()]
    chosen = materializer_for_value(scalar)
    assert chosen.name == "numpy.scalar"
    loaded = SCALAR.load(SCALAR.save(scalar))
    assert type(loaded) is type(scalar)
    assert np.asarray(loaded).tobytes() == np.asarray(scalar).tobytes()
