"""The ``pandas.parquet`` materializer: DataFrames and Series through pyarrow parquet."""

from __future__ import annotations

from typing import Any, ClassVar

from mlops_lite.errors import MaterializerError
from mlops_lite.materializers.base import Materializer

__all__ = ["PandasParquetMaterializer", "pyarrow_available"]

# Our own key in the arrow schema metadata, beside pandas' b"pandas" key.
_METADATA_KEY = b"mlops_lite"
# Used as the column name of a Series whose name is None (parquet needs str names).
_UNNAMED_SERIES = "__series__"

_pyarrow_available: bool | None = None


def pyarrow_available() -> bool:
    """Whether pandas and pyarrow both import here (checked once, then remembered)."""
    global _pyarrow_available
    if _pyarrow_available is None:
        try:
            import pandas  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            _pyarrow_available = False
        else:
            _pyarrow_available = True
    return _pyarrow_available


def _dtype_round_trips(pd: Any, values: Any, *, allow_object: bool = True) -> bool:
    """Whether parquet gives this column (or index level) back with the same dtype.

    A whitelist measured with pandas 3 / pyarrow 26; anything else goes to
    cloudpickle rather than come back subtly different.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _dtype_round_trips(pd, dtype.categories, allow_object=False)
    if isinstance(dtype, pd.DatetimeTZDtype | pd.StringDtype | pd.BooleanDtype):
        return True
    if isinstance(dtype, pd.core.dtypes.dtypes.BaseMaskedDtype):  # Int64, Float32, ...
        return True
    kind = getattr(dtype, "kind", None)
    if not hasattr(dtype, "hasobject"):  # other extension dtypes: Period, Interval, Sparse...
        return False
    if kind in ("b", "i", "u", "f", "M", "m"):
        return True
    if kind == "O" and allow_object:
        # Object columns survive when every item is bytes, or every item is str (put
        # back to object on load from pandas' metadata); None/NaN mixtures do not.
        return bool(pd.api.types.infer_dtype(values, skipna=False) in ("bytes", "string"))
    return False  # complex, numpy str/bytes/void


def _frame_round_trips(pd: Any, frame: Any) -> bool:
    columns = frame.columns
    if len(columns) == 0 or isinstance(columns, pd.MultiIndex):
        return False
    if not all(type(label) is str for label in columns) or not columns.is_unique:
        return False
    index = frame.index
    if any(name is not None and type(name) is not str for name in index.names):
        return False
    if any(name in columns for name in index.names if name is not None):
        return False
    if isinstance(index, pd.MultiIndex):
        # Object levels are not put back on load (only a flat index is).
        index_ok = all(
            _dtype_round_trips(pd, index.get_level_values(i), allow_object=False)
            for i in range(index.nlevels)
        )
    else:
        index_ok = _dtype_round_trips(pd, index)
    return index_ok and all(_dtype_round_trips(pd, frame[label]) for label in columns)


class PandasParquetMaterializer(Materializer):
    """``pandas.DataFrame`` and ``pandas.Series`` as an uncompressed parquet file.

    Kept exactly: numeric, bool, datetime (with unit and time zone), timedelta,
    str, nullable (Int64, boolean) and categorical dtypes, the index (RangeIndex,
    named, MultiIndex) and column order. :meth:`can_save` is false for anything
    parquet would change (non-str or duplicate column labels, complex or mixed
    object columns, periods, intervals...), so those fall to cloudpickle. Written
    uncompressed because the store compresses payloads itself.
    """

    name: ClassVar[str] = "pandas.parquet"
    version: ClassVar[int] = 1
    handled_type_names: ClassVar[tuple[str, ...]] = (
        "pandas.DataFrame",
        "pandas.core.frame.DataFrame",
        "pandas.Series",
        "pandas.core.series.Series",
    )

    def can_save(self, value: Any) -> bool:
        """Whether parquet can keep the frame exactly (pyarrow installed, supported dtypes)."""
        if not pyarrow_available():
            return False
        import pandas as pd

        if type(value) is pd.Series:
            if value.name is not None and type(value.name) is not str:
                return False
            value = value.to_frame(name=_series_column(value))
        elif type(value) is not pd.DataFrame:
            return False
        return _frame_round_trips(pd, value)

    def can_save_type(self, cls: type) -> bool:
        """DataFrames and Series, as far as their type says."""
        return pyarrow_available()

    def save(self, value: Any) -> bytes:
        """The frame as parquet bytes."""
        import json

        if not self.can_save(value):
            raise MaterializerError(
                f"pandas.parquet cannot save this {type(value).__qualname__} exactly "
                "(or pyarrow is not installed)"
            )
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        if type(value) is pd.Series:
            kind = {"kind": "series", "name": value.name}
            frame = value.to_frame(name=_series_column(value))
        else:
            kind = {"kind": "frame"}
            frame = value
        table = pa.Table.from_pandas(frame)
        metadata = dict(table.schema.metadata or {})
        metadata[_METADATA_KEY] = json.dumps(kind, sort_keys=True).encode()
        table = table.replace_schema_metadata(metadata)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="none")
        return bytes(sink.getvalue().to_pybytes())

    def load(self, data: bytes | bytearray | memoryview) -> Any:
        """The frame written by ``save``."""
        if not pyarrow_available():
            raise MaterializerError(
                "this artifact is a parquet file but pandas/pyarrow are not installed: "
                "pip install pandas pyarrow"
            )
        try:
            return _read_parquet(data)
        except MaterializerError:
            raise
        except Exception as exc:  # pyarrow and pandas, on bytes nobody vouches for
            raise MaterializerError(
                f"corrupt pandas.parquet payload: {type(exc).__name__}: {exc}"
            ) from None


def _read_parquet(data: bytes | bytearray | memoryview) -> Any:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(pa.py_buffer(data)))
    metadata = table.schema.metadata or {}
    kind = json.loads(metadata.get(_METADATA_KEY, b'{"kind": "frame"}'))
    if not isinstance(kind, dict) or kind.get("kind") not in ("frame", "series"):
        raise MaterializerError("corrupt pandas.parquet payload: unknown kind of value")
    frame = _restore_object_columns(table, table.to_pandas())
    if kind["kind"] == "series":
        series = frame.iloc[:, 0]
        series.name = kind.get("name")
        return series
    return frame


def _series_column(series: Any) -> str:
    return series.name if series.name is not None else _UNNAMED_SERIES


def _restore_object_columns(table: Any, frame: Any) -> Any:
    """Give object-of-str columns back their object dtype (pandas 3 reads them as str)."""
    pandas_metadata = table.schema.pandas_metadata or {}
    object_fields = {
        column["field_name"]
        for column in pandas_metadata.get("columns", [])
        if column.get("numpy_type") == "object" and column.get("pandas_type") == "unicode"
    }
    if not object_fields:
        return frame
    for label in frame.columns:
        if label in object_fields and frame[label].dtype != object:
            frame[label] = frame[label].astype(object)
    # Entries are field names, or dicts describing a RangeIndex (never object).
    index_fields = [f for f in pandas_metadata.get("index_columns", []) if isinstance(f, str)]
    if frame.index.nlevels == 1 and index_fields and index_fields[0] in object_fields:
        if frame.index.dtype != object:
            frame.index = frame.index.astype(object)
    return frame
