"""Previews of artifact values: small, plain data that the dashboard draws (and escapes).

A preview is one of ``TextPreview``, ``TablePreview``, ``ArrayPreview``,
``ImagePreview`` or ``Unavailable``; none holds markup, so whatever a value
contains is shown as text. ``preview_value`` asks the materializer first — a
materializer can offer its own preview by overriding ``Materializer.preview``
(return None to fall back) — then recognises DataFrames, arrays, images
(PNG/JPEG/GIF/WebP bytes, PIL images, matplotlib figures), text and JSON-like
values, and shows anything else as its ``repr``.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from mlops_lite.materializers.base import Materializer

__all__ = [
    "ArrayPreview",
    "ColumnSummary",
    "ImagePreview",
    "Preview",
    "TablePreview",
    "TextPreview",
    "Unavailable",
    "encode_png",
    "image_mime",
    "preview_value",
]

MAX_TEXT: Final = 20_000
"""Characters of text or JSON shown; the rest is cut (and said so)."""

HEAD_ROWS: Final = 20
MAX_TABLE_COLUMNS: Final = 40
HISTOGRAM_BINS: Final = 20

_IMAGE_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True)
class TextPreview:
    """Text or JSON, perhaps cut at ``MAX_TEXT`` characters."""

    text: str
    language: Literal["text", "json"] = "text"
    truncated: bool = False


@dataclass(frozen=True)
class ColumnSummary:
    """One column of a table: its type, how many values are set, and a few statistics."""

    name: str
    dtype: str
    non_null: int
    statistics: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TablePreview:
    """The first rows of a table (cells as text) and a summary of every column."""

    columns: list[str]
    rows: list[list[str]]
    shape: tuple[int, int]
    summary: list[ColumnSummary] = field(default_factory=list)


@dataclass(frozen=True)
class ImagePreview:
    """An image in a format every browser shows (never SVG: it could carry script)."""

    mime: str
    data: bytes


@dataclass(frozen=True)
class ArrayPreview:
    """An array's shape, dtype, statistics, histogram of values, and its first values."""

    shape: tuple[int, ...]
    dtype: str
    statistics: dict[str, float] = field(default_factory=dict)
    # counts per bin and the len(counts) + 1 bin edges
    histogram: tuple[list[int], list[float]] | None = None
    values: str = ""
    image: ImagePreview | None = None


@dataclass(frozen=True)
class Unavailable:
    """Why there is no preview (a pickle nobody trusted, too large, unreadable)."""

    reason: str


Preview = TextPreview | TablePreview | ArrayPreview | ImagePreview | Unavailable


def image_mime(data: bytes | bytearray | memoryview) -> str | None:
    """The MIME type of PNG, JPEG, GIF or WebP bytes, else None."""
    head = bytes(data[:16])
    for magic, mime in _IMAGE_MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def preview_value(value: Any, materializer: Materializer | None = None) -> Preview:
    """A preview of ``value``: the materializer's own, else one chosen by the value's type."""
    if materializer is not None:
        own = materializer.preview(value)
        if own is not None:
            return own
    # Classes are recognised by package and name, so nothing optional is imported here.
    names = {
        f"{cls.__module__.partition('.')[0]}.{cls.__qualname__}" for cls in type(value).__mro__
    }
    if "pandas.DataFrame" in names:
        return _table(value)
    if "pandas.Series" in names:
        return _table(value.to_frame())
    if "numpy.ndarray" in names:
        return _array(value)
    if "PIL.Image" in names:
        return _saved_image(lambda buffer: value.save(buffer, format="PNG"))
    if "matplotlib.Figure" in names:
        return _saved_image(lambda buffer: value.savefig(buffer, format="png", dpi=80))
    if isinstance(value, (bytes, bytearray, memoryview)):
        mime = image_mime(value)
        if mime is not None:
            return ImagePreview(mime, bytes(value))
        return _bytes(bytes(value))
    if isinstance(value, str):
        return _text(value, "text")
    if "numpy.generic" in names:
        return _text(repr(value.item()), "text")
    if _json_like(value):
        return _text(json.dumps(value, indent=2, default=repr, allow_nan=True), "json")
    return _text(repr(value), "text")


def _text(text: str, language: Literal["text", "json"]) -> TextPreview:
    if len(text) > MAX_TEXT:
        return TextPreview(text[:MAX_TEXT], language, truncated=True)
    return TextPreview(text, language)


def _bytes(data: bytes) -> TextPreview:
    try:
        return _text(data.decode("utf-8"), "text")
    except UnicodeDecodeError:
        shown = data[:1024].hex(" ", 1)
        return TextPreview(f"{len(data)} bytes: {shown}", truncated=len(data) > 1024)


def _json_like(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_json_like(item, depth + 1) for item in value[:1000])
    if isinstance(value, dict):
        return all(_json_like(item, depth + 1) for item in list(value.values())[:1000])
    return False


def _saved_image(save: Any) -> Preview:
    import io

    buffer = io.BytesIO()
    try:
        save(buffer)
    except Exception as error:  # a value's own export failing must not break the page
        return Unavailable(f"the image could not be rendered: {error!r}")
    return ImagePreview("image/png", buffer.getvalue())


def _cell(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"


def _table(frame: Any) -> TablePreview:
    shown = frame.iloc[:HEAD_ROWS, :MAX_TABLE_COLUMNS]
    rows = [[_cell(v) for v in row] for row in shown.itertuples(index=False, name=None)]
    summary = []
    for name in shown.columns:
        column = frame[name]
        statistics: dict[str, str] = {}
        if column.dtype.kind in "biuf" and column.dtype.kind != "b":
            described = column.describe()
            for key in ("min", "mean", "max", "std"):
                if key in described and not math.isnan(float(described[key])):
                    statistics[key] = f"{float(described[key]):.6g}"
        else:
            counts = column.astype(str).value_counts()
            statistics["unique"] = str(len(counts))
            if len(counts):
                statistics["top"] = _cell(counts.index[0])
        summary.append(ColumnSummary(str(name), str(column.dtype), int(column.count()), statistics))
    return TablePreview(
        [str(c) for c in shown.columns], rows, (int(frame.shape[0]), int(frame.shape[1])), summary
    )


def _array(array: Any) -> ArrayPreview:
    import numpy

    statistics: dict[str, float] = {}
    histogram = None
    image = None
    if array.dtype.kind in "biuf" and array.size:
        finite = array[numpy.isfinite(array)] if array.dtype.kind == "f" else array
        if finite.size:
            as_float = finite.astype(numpy.float64)
            statistics = {
                "min": float(as_float.min()),
                "max": float(as_float.max()),
                "mean": float(as_float.mean()),
                "std": float(as_float.std()),
            }
            counts, edges = numpy.histogram(as_float, bins=HISTOGRAM_BINS)
            histogram = ([int(c) for c in counts], [float(e) for e in edges])
        if array.dtype == numpy.uint8 and (
            array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))
        ):
            image = ImagePreview("image/png", encode_png(array))
    with numpy.printoptions(threshold=200, edgeitems=5, linewidth=100):
        values = str(array)
    return ArrayPreview(
        tuple(int(n) for n in array.shape),
        str(array.dtype),
        statistics,
        histogram,
        values[:MAX_TEXT],
        image,
    )


def encode_png(pixels: Any) -> bytes:
    """A PNG of a ``uint8`` array, height x width (grey) or x 1/3/4 channels, with zlib only."""
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    channels = 1 if pixels.ndim == 2 else int(pixels.shape[2])
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = pixels.reshape(height, width * channels).tobytes()
    stride = width * channels
    # Each scanline starts with filter type 0 (none).
    raw = b"".join(b"\x00" + rows[i * stride : (i + 1) * stride] for i in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(raw, 6)),
            chunk(b"IEND", b""),
        ]
    )
