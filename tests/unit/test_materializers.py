"""Unit tests for the materializer registry and the builtin materializers."""

from __future__ import annotations

import enum
import importlib.metadata
import io
import json
import os
import subprocess
import sys
import threading
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Optional

import pytest

import mlops_lite.materializers as materializers
from mlops_lite.errors import MaterializerError, NoMaterializerError, UnknownMaterializerError
from mlops_lite.materializers import (
    ENTRY_POINT_GROUP,
    CloudpickleMaterializer,
    Materializer,
    MsgpackMaterializer,
    get_materializer,
    materializer_for_type,
    materializer_for_value,
    register_materializer,
    registered_materializers,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


class _FakeEntryPoint:
    """Just what the registry uses of importlib.metadata.EntryPoint."""

    def __init__(self, name: str, target: object) -> None:
        self.name = name
        self.value = f"fake_plugin:{name}"
        self.group = ENTRY_POINT_GROUP
        self._target = target

    def load(self) -> object:
        if isinstance(self._target, BaseException):
            raise self._target
        return self._target


class _EntryPoints:
    """A stand-in for importlib.metadata.entry_points that counts its calls."""

    def __init__(self) -> None:
        self.plugins: list[_FakeEntryPoint] = []
        self.calls = 0

    def __call__(self, *, group: str) -> list[_FakeEntryPoint]:
        self.calls += 1
        return [ep for ep in self.plugins if ep.group == group]


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own registry, so registrations never leak between tests."""
    monkeypatch.setattr(materializers, "_registry", materializers._Registry())


@pytest.fixture(autouse=True)
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[_EntryPoints]:
    """No plugin from the real environment: tests declare the ones they want."""
    fake = _EntryPoints()
    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    yield fake


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


class Point3D(Point):
    pass


class PointMaterializer(Materializer):
    name: ClassVar[str] = "tests.point"
    version: ClassVar[int] = 1
    handled_types: ClassVar[tuple[type, ...]] = (Point,)

    def save(self, value: Any) -> bytes:
        return f"{value.x},{value.y}".encode()

    def load(self, data: bytes | bytearray | memoryview) -> Any:
        x, y = bytes(data).decode().split(",")
        return Point(int(x), int(y))


class DictAsJson(Materializer):
    name: ClassVar[str] = "tests.json"
    version: ClassVar[int] = 1
    handled_types: ClassVar[tuple[type, ...]] = (dict,)

    def save(self, value: Any) -> bytes:
        return json.dumps(value, sort_keys=True).encode()

    def load(self, data: bytes | bytearray | memoryview) -> Any:
        return json.loads(bytes(data))


class Color(enum.IntEnum):
    RED = 1


# -- the public face ---------------------------------------------------------------


def test_all_is_sorted_and_every_name_exists() -> None:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical.
    def kind(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert materializers.__all__ == sorted(materializers.__all__, key=kind)
    for name in materializers.__all__:
        assert hasattr(materializers, name)


def test_import_does_not_import_optional_or_heavy_libraries() -> None:
    heavy = ["numpy", "pandas", "pyarrow", "cloudpickle", "dulwich", "importlib.metadata"]
    script = (
        "import sys, json; before = set(sys.modules); import mlops_lite.materializers; "
        f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules and m not in before)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


# -- choosing by type --------------------------------------------------------------


def test_registered_materializer_is_chosen_for_a_subclass_by_mro() -> None:
    register_materializer(PointMaterializer)
    chosen = materializer_for_value(Point3D(1, 2))
    assert chosen.name == "tests.point"
    assert vars(chosen.load(chosen.save(Point3D(1, 2)))) == {"x": 1, "y": 2}


def test_user_registration_wins_over_builtins_for_its_types() -> None:
    assert materializer_for_value({"a": 1}).name == "builtins.msgpack"
    register_materializer(DictAsJson())
    assert materializer_for_value({"a": 1}).name == "tests.json"
    assert materializer_for_value([1]).name == "builtins.msgpack"


def test_registering_a_taken_name_is_an_error() -> None:
    register_materializer(PointMaterializer)
    with pytest.raises(MaterializerError, match=r"'tests\.point'.*override=True"):
        register_materializer(PointMaterializer)


def test_override_replaces_the_materializer_of_that_name() -> None:
    register_materializer(PointMaterializer)

    class NewerPoint(PointMaterializer):
        version: ClassVar[int] = 2

    register_materializer(NewerPoint, override=True)
    assert get_materializer("tests.point").version == 2
    assert sum(m.name == "tests.point" for m in registered_materializers()) == 1


def test_override_can_replace_a_builtin() -> None:
    class MyMsgpack(MsgpackMaterializer):
        pass

    register_materializer(MyMsgpack, override=True)
    assert type(get_materializer("builtins.msgpack")) is MyMsgpack
    assert type(materializer_for_value([1, 2])) is MyMsgpack


def test_registering_something_that_is_not_a_materializer_is_refused() -> None:
    with pytest.raises(MaterializerError, match="neither a Materializer"):
        register_materializer(object())  # type: ignore[arg-type]

    class Nameless(Materializer):
        version: ClassVar[int] = 1

    with pytest.raises(MaterializerError, match="no `name`"):
        register_materializer(Nameless)


def test_subclasses_of_native_types_do_not_use_msgpack() -> None:
    """An IntEnum would come back as a plain int: it must go elsewhere, exactly."""
    for value in (Color.RED, [Color.RED], {"c": Color.RED}):
        chosen = materializer_for_value(value)
        assert chosen.name == "cloudpickle"
        assert chosen.load(chosen.save(value)) == value
    loaded = CloudpickleMaterializer().load(CloudpickleMaterializer().save(Color.RED))
    assert type(loaded) is Color


def test_unpicklable_value_without_materializer_names_step_output_and_type() -> None:
    with pytest.raises(NoMaterializerError) as caught:
        materializer_for_value(threading.Lock(), step_name="train", output_name="model")
    message = str(caught.value)
    assert "'train'" in message
    assert "'model'" in message
    assert "_thread.lock" in message
    assert "register_materializer" in message


def test_pickle_fallback_is_marked_as_running_code() -> None:
    def closure(x: int) -> int:
        return x + 1

    chosen = materializer_for_value(closure)
    assert chosen.name == "cloudpickle"
    assert chosen.uses_pickle
    assert chosen.load(chosen.save(closure))(1) == 2
    assert not any(m.uses_pickle for m in registered_materializers() if m.name != "cloudpickle")


# -- builtins.msgpack specifics ----------------------------------------------------


def test_self_referencing_list_falls_through_to_pickle_and_keeps_its_cycle() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    assert not MsgpackMaterializer().can_save(cyclic)
    chosen = materializer_for_value(cyclic)
    assert chosen.name == "cloudpickle"
    loaded = chosen.load(chosen.save(cyclic))
    assert loaded[1] is loaded


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _depth(value: list[Any]) -> int:
    depth = 0
    while value:
        value, depth = value[0], depth + 1
    return depth


def test_msgpack_refuses_nesting_its_reader_could_not_read_back() -> None:
    msgpack_materializer = MsgpackMaterializer()
    assert _depth(msgpack_materializer.load(msgpack_materializer.save(_nested(1023)))) == 1023
    assert not msgpack_materializer.can_save(_nested(1024))
    with pytest.raises(MaterializerError, match=r"builtins\.msgpack cannot save"):
        msgpack_materializer.save(_nested(1024))


def test_msgpack_round_trips_the_values_json_gets_wrong() -> None:
    value = {
        1: (1, [2], ()),
        (1, "a"): frozenset({b"x"}),
        None: {2**100, -(2**70)},
        "s": [True, 1, 1.0, float("inf"), "\ud800", b"\x00"],
    }
    msgpack_materializer = MsgpackMaterializer()
    loaded = msgpack_materializer.load(msgpack_materializer.save(value))
    assert loaded == value
    assert list(loaded) == list(value)
    assert type(loaded[1]) is tuple
    assert [type(x) for x in loaded["s"]] == [bool, int, float, float, str, bytes]


def test_bytearray_loads_back_as_bytes_as_documented() -> None:
    msgpack_materializer = MsgpackMaterializer()
    loaded = msgpack_materializer.load(msgpack_materializer.save(bytearray(b"ab")))
    assert loaded == b"ab"
    assert type(loaded) is bytes


def test_corrupt_msgpack_payload_is_a_materializer_error() -> None:
    with pytest.raises(MaterializerError, match="corrupt"):
        MsgpackMaterializer().load(b"\x92\x01")


# -- loading by name and plugins ---------------------------------------------------


def test_unknown_name_says_what_to_install_or_register() -> None:
    with pytest.raises(UnknownMaterializerError) as caught:
        get_materializer("torch.tensor")
    message = str(caught.value)
    assert "'torch.tensor'" in message
    assert "'torch'" in message
    assert "install" in message
    assert ENTRY_POINT_GROUP in message
    assert "register_materializer" in message


def test_a_format_newer_than_the_installed_materializer_is_refused() -> None:
    assert get_materializer("builtins.msgpack", version=1).name == "builtins.msgpack"
    with pytest.raises(UnknownMaterializerError, match=r"version 2.*upgrade"):
        get_materializer("builtins.msgpack", version=2)


def test_plugins_are_not_loaded_while_builtins_answer(entry_points: _EntryPoints) -> None:
    entry_points.plugins.append(_FakeEntryPoint("point", PointMaterializer))
    assert materializer_for_value([1, 2]).name == "builtins.msgpack"
    assert get_materializer("numpy.npy").name == "numpy.npy"
    assert materializer_for_type(int) is not None
    assert entry_points.calls == 0


def test_plugin_is_loaded_once_on_the_first_miss(entry_points: _EntryPoints) -> None:
    entry_points.plugins.append(_FakeEntryPoint("point", PointMaterializer))
    assert materializer_for_value(Point(1, 2)).name == "tests.point"
    assert materializer_for_value(Point3D(1, 2)).name == "tests.point"
    assert materializer_for_value(object()).name == "cloudpickle"
    assert get_materializer("tests.point").name == "tests.point"
    assert entry_points.calls == 1


def test_plugin_may_be_an_instance_and_is_found_by_name(entry_points: _EntryPoints) -> None:
    entry_points.plugins.append(_FakeEntryPoint("point", PointMaterializer()))
    assert get_materializer("tests.point").name == "tests.point"
    assert "tests.point" in [m.name for m in registered_materializers()]


def test_plugins_rank_below_builtins_so_lookup_history_never_changes_a_choice(
    entry_points: _EntryPoints,
) -> None:
    class ListPlugin(DictAsJson):
        name: ClassVar[str] = "tests.list"
        handled_types: ClassVar[tuple[type, ...]] = (list, Point)

    entry_points.plugins.append(_FakeEntryPoint("lists", ListPlugin))
    assert materializer_for_value([1]).name == "builtins.msgpack"
    materializer_for_value(Point(0, 0))  # a miss: plugins are now loaded
    assert entry_points.calls == 1
    assert materializer_for_value([1]).name == "builtins.msgpack"


def test_broken_plugin_warns_and_is_named_when_its_artifact_is_loaded(
    entry_points: _EntryPoints,
) -> None:
    entry_points.plugins.append(_FakeEntryPoint("torch", ImportError("no module named torch")))
    with pytest.warns(RuntimeWarning, match=r"'torch'.*failed to load"):
        assert materializer_for_value(Point(0, 0)).name == "cloudpickle"
    with pytest.raises(UnknownMaterializerError, match=r"failed to load.*no module named torch"):
        get_materializer("torch.tensor")


def test_plugin_with_a_taken_name_is_ignored_with_a_warning(entry_points: _EntryPoints) -> None:
    class FakeMsgpack(PointMaterializer):
        name: ClassVar[str] = "builtins.msgpack"

    entry_points.plugins.append(_FakeEntryPoint("fake", FakeMsgpack))
    with pytest.warns(RuntimeWarning, match="already taken"):
        registered_materializers()
    assert type(get_materializer("builtins.msgpack")) is MsgpackMaterializer


# -- materializer_for_type ---------------------------------------------------------

T = typing.TypeVar("T")


@pytest.mark.parametrize(
    "annotation",
    [
        int,
        bool,
        str,
        type(None),
        None,
        list[int],
        dict[str, float],
        tuple[int, ...],
        dict[tuple[int, str], list[bytes]],
        Optional[int],  # noqa: UP045 - the typing spelling must work too
        int | str,
        Annotated[list[int], "an output name"],
        typing.Literal["a", 1],
        typing.NewType("Count", int),
    ],
)
def test_type_of_native_data_maps_to_msgpack(annotation: Any) -> None:
    chosen = materializer_for_type(annotation)
    assert chosen is not None
    assert chosen.name == "builtins.msgpack"


@pytest.mark.parametrize(
    "annotation",
    [Any, object, list, dict, list[Any], dict[str, object], T, Sequence[int], "int"],
)
def test_undecidable_types_map_to_none(annotation: Any) -> None:
    assert materializer_for_type(annotation) is None


def test_type_of_unknown_class_maps_to_pickle_and_registered_class_to_its_materializer() -> None:
    chosen = materializer_for_type(Point)
    assert chosen is not None and chosen.name == "cloudpickle"
    register_materializer(PointMaterializer)
    chosen = materializer_for_type(Point3D)
    assert chosen is not None and chosen.name == "tests.point"


def test_type_of_a_native_subclass_maps_where_its_values_go() -> None:
    chosen = materializer_for_type(Color)
    assert chosen is not None
    assert chosen.name == materializer_for_value(Color.RED).name == "cloudpickle"


def test_types_that_mix_materializers_are_undecidable() -> None:
    ndarray: Any = pytest.importorskip("numpy").ndarray
    assert materializer_for_type(int | ndarray) is None
    assert materializer_for_type(list[ndarray]) is None


# -- numpy ------------------------------------------------------------------------


def test_numpy_values_choose_npy_scalars_and_pickle_for_objects() -> None:
    np = pytest.importorskip("numpy")
    assert materializer_for_value(np.zeros(3)).name == "numpy.npy"
    assert materializer_for_value(np.float64(1.5)).name == "numpy.scalar"
    assert materializer_for_value(np.array([{"a": 1}], dtype=object)).name == "cloudpickle"
    # A mask or subclass would be lost in a .npy file.
    assert materializer_for_value(np.ma.masked_array([1, 2], mask=[0, 1])).name == "cloudpickle"
    chosen = materializer_for_type(np.ndarray)
    assert chosen is not None and chosen.name == "numpy.npy"
    chosen = materializer_for_type(np.float32)
    assert chosen is not None and chosen.name == "numpy.scalar"


def test_npy_payload_is_a_standard_npy_file() -> None:
    np = pytest.importorskip("numpy")
    array = np.arange(6, dtype=">f8").reshape(2, 3)
    payload = get_materializer("numpy.npy").save(array)
    loaded = np.load(io.BytesIO(payload), allow_pickle=False)
    assert loaded.dtype.str == ">f8"
    assert np.array_equal(loaded, array)


def test_npy_load_from_bytearray_shares_its_memory() -> None:
    np = pytest.importorskip("numpy")
    npy = get_materializer("numpy.npy")
    buffer = bytearray(npy.save(np.zeros(4, dtype=np.uint8)))
    loaded = npy.load(buffer)
    buffer[-1] = 7
    assert loaded[-1] == 7


def test_npy_load_from_bytes_is_writable() -> None:
    np = pytest.importorskip("numpy")
    npy = get_materializer("numpy.npy")
    loaded = npy.load(npy.save(np.arange(3)))
    loaded[0] = 42
    assert loaded.tolist() == [42, 1, 2]


def test_npy_never_unpickles_an_object_payload() -> None:
    np = pytest.importorskip("numpy")
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(MaterializerError, match="object dtype"):
        get_materializer("numpy.npy").load(buffer.getvalue())


@pytest.mark.parametrize("payload", [b"", b"not an npy file", b"\x93NUMPY\x01\x00\x10\x00{'descr'"])
def test_corrupt_npy_payload_is_a_materializer_error(payload: bytes) -> None:
    pytest.importorskip("numpy")
    with pytest.raises(MaterializerError, match="corrupt"):
        get_materializer("numpy.npy").load(payload)


def test_truncated_npy_payload_is_a_materializer_error() -> None:
    np = pytest.importorskip("numpy")
    payload = get_materializer("numpy.npy").save(np.arange(10))
    with pytest.raises(MaterializerError, match="data bytes, expected"):
        get_materializer("numpy.npy").load(payload[:-1])


# -- pandas -----------------------------------------------------------------------


def _exact_frames() -> dict[str, Any]:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    return {
        "numbers": pd.DataFrame(
            {
                "i8": np.arange(3, dtype="int8"),
                "u64": np.array([0, 2**63, 2**64 - 1], dtype="uint64"),
                "f32": np.array([1.5, np.nan, -0.0], dtype="float32"),
                "b": [True, False, True],
            }
        ),
        "strings": pd.DataFrame({"s": ["a", "b", None]}),
        "object strings": pd.DataFrame({"o": pd.Series(["a", "b"], dtype=object)}),
        "bytes": pd.DataFrame({"b": [b"x", b"\x00"]}),
        "nullable": pd.DataFrame(
            {
                "i": pd.array([1, None], dtype="Int64"),
                "b": pd.array([True, None], dtype="boolean"),
            }
        ),
        "categorical": pd.DataFrame({"c": pd.Categorical(["x", "y", "x"])}),
        "time": pd.DataFrame(
            {
                "ns": np.array(["2020-01-01T00:00:00.000000001"], dtype="datetime64[ns]"),
                "tz": pd.to_datetime(["2020-01-01"]).tz_localize("Europe/Paris"),
                "td": pd.to_timedelta([1], unit="s"),
            }
        ),
        "named index": pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="key")),
        "object index": pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], dtype=object)),
        "range index": pd.DataFrame({"a": [1, 2]}, index=pd.RangeIndex(5, 7)),
        "multi index": pd.DataFrame(
            {"a": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
        ),
    }


FRAME_CASES = [
    "numbers",
    "strings",
    "object strings",
    "bytes",
    "nullable",
    "categorical",
    "time",
    "named index",
    "object index",
    "range index",
    "multi index",
]


def test_frame_cases_list_every_frame() -> None:
    pytest.importorskip("pandas")
    assert list(_exact_frames()) == FRAME_CASES


@pytest.mark.parametrize("case", FRAME_CASES)
def test_parquet_round_trips_dataframes_exactly(case: str) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = _exact_frames()[case]
    chosen = materializer_for_value(frame)
    assert chosen.name == "pandas.parquet"
    payload = chosen.save(frame)
    assert payload == chosen.save(frame.copy(deep=True))  # deterministic
    pd.testing.assert_frame_equal(
        chosen.load(payload), frame, check_exact=True, check_index_type=True, check_column_type=True
    )


@pytest.mark.parametrize("name", ["prices", None])
def test_parquet_round_trips_series_with_their_name(name: str | None) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    series = pd.Series([1.5, 2.5], name=name, index=pd.Index(["a", "b"], name="day"))
    chosen = materializer_for_value(series)
    assert chosen.name == "pandas.parquet"
    loaded = chosen.load(chosen.save(series))
    assert isinstance(loaded, pd.Series)
    pd.testing.assert_series_equal(loaded, series, check_exact=True, check_index_type=True)


def test_frames_parquet_would_change_go_to_pickle_exactly() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frames = [
        pd.DataFrame({0: [1, 2]}),  # int column labels come back as another index type
        pd.DataFrame({"m": [1, "x"]}),  # mixed object column
        pd.DataFrame({"c": [1j]}),  # complex: no parquet type
        pd.DataFrame({"p": pd.period_range("2020-01", periods=2, freq="M")}),
        pd.DataFrame(),
    ]
    for frame in frames:
        chosen = materializer_for_value(frame)
        assert chosen.name == "cloudpickle", frame
        pd.testing.assert_frame_equal(chosen.load(chosen.save(frame)), frame, check_exact=True)


def test_dataframes_go_to_pickle_when_pyarrow_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    pd = pytest.importorskip("pandas")
    monkeypatch.setattr("mlops_lite.materializers.pandas._pyarrow_available", False)
    assert materializer_for_value(pd.DataFrame({"a": [1]})).name == "cloudpickle"
    with pytest.raises(MaterializerError, match="pip install pandas pyarrow"):
        get_materializer("pandas.parquet").load(b"PAR1")


def test_type_of_dataframe_maps_to_parquet() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    chosen = materializer_for_type(pd.DataFrame)
    assert chosen is not None and chosen.name == "pandas.parquet"
