"""Previews of artifact values: tables, arrays, images, text; the materializer's own first."""

from __future__ import annotations

import struct
import zlib
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mlops_lite.materializers import Materializer
from mlops_lite.materializers.preview import (
    MAX_TEXT,
    ArrayPreview,
    ImagePreview,
    TablePreview,
    TextPreview,
    encode_png,
    image_mime,
    preview_value,
)


def test_a_frame_shows_its_head_and_a_summary_of_each_column() -> None:
    frame = pd.DataFrame({"x": np.arange(100.0), "label": ["a", "b", "b", "c"] * 25})
    preview = preview_value(frame)
    assert isinstance(preview, TablePreview)
    assert preview.shape == (100, 2) and len(preview.rows) == 20
    x, label = preview.summary
    assert x.statistics["max"] == "99" and x.non_null == 100
    assert label.statistics == {"unique": "3", "top": "b"}


def test_an_array_shows_shape_dtype_statistics_and_a_histogram() -> None:
    preview = preview_value(np.array([[0.0, 1.0, np.nan], [2.0, 3.0, 4.0]]))
    assert isinstance(preview, ArrayPreview)
    assert preview.shape == (2, 3) and preview.dtype == "float64"
    assert preview.statistics["max"] == 4.0  # NaN left out
    assert preview.histogram is not None and sum(preview.histogram[0]) == 5
    assert preview.image is None


def test_a_uint8_array_of_pixels_is_also_an_image_that_decodes() -> None:
    pixels = np.zeros((3, 4, 3), dtype=np.uint8)
    pixels[1, 2] = (255, 128, 7)
    preview = preview_value(pixels)
    assert isinstance(preview, ArrayPreview) and preview.image is not None
    png = preview.image.data
    assert image_mime(png) == "image/png"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (4, 3)
    idat = png.index(b"IDAT")
    length = struct.unpack(">I", png[idat - 4 : idat])[0]
    raw = zlib.decompress(png[idat + 4 : idat + 4 + length])
    row = raw[1 * (1 + 12) + 1 : 2 * (1 + 12)]  # second scanline, after its filter byte
    assert row[6:9] == bytes((255, 128, 7))
    assert encode_png(np.zeros((2, 2), dtype=np.uint8)).startswith(b"\x89PNG")


def test_image_bytes_text_and_json_like_values() -> None:
    png = encode_png(np.zeros((1, 1), dtype=np.uint8))
    assert preview_value(png) == ImagePreview("image/png", png)
    assert preview_value("<b>hi</b>") == TextPreview("<b>hi</b>")
    value = preview_value({"a": (1, 2), 3: None})
    assert isinstance(value, TextPreview) and value.language == "json" and '"a"' in value.text
    long = preview_value("x" * (MAX_TEXT + 5))
    assert isinstance(long, TextPreview) and long.truncated and len(long.text) == MAX_TEXT
    assert "3 bytes" in preview_value(b"\xff\xfe\x00").text  # type: ignore[union-attr]


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


class PointMaterializer(Materializer):
    name: ClassVar[str] = "tests.point"
    version: ClassVar[int] = 1

    def preview(self, value: Any) -> TextPreview | None:
        return TextPreview(f"a point at {value.x}") if value.x >= 0 else None


def test_a_materializer_provides_its_own_preview_or_falls_back() -> None:
    materializer = PointMaterializer()
    assert preview_value(Point(3), materializer) == TextPreview("a point at 3")
    fallback = preview_value(Point(-1), materializer)
    assert isinstance(fallback, TextPreview) and "Point object" in fallback.text
