"""Reading one ref from a sorted packed-refs file by binary search finds what a scan finds."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_lite.store.refs import DiskRefs

names = st.text(alphabet="abc/-_09", min_size=1, max_size=12).map(lambda s: "refs/mlops/" + s)


@settings(max_examples=60)
@given(
    st.dictionaries(names, st.integers(0, 2**32), max_size=40),
    st.sets(names, max_size=5),
    st.booleans(),
)
def test_a_packed_ref_is_found_by_search_exactly_as_by_scan(
    tmp_path_factory: object, refs: dict[str, int], absent: set[str], peeled: bool
) -> None:
    directory = Path(tmp_path_factory.getbasetemp()) / "packed"  # type: ignore[attr-defined]
    directory.mkdir(exist_ok=True)
    lines = ["# pack-refs with: peeled fully-peeled sorted"]
    for number, name in enumerate(sorted(refs, key=str.encode)):
        lines.append(f"{refs[name]:040x} {name}")
        if peeled and number % 2:
            lines.append(f"^{number:040x}")
    (directory / "packed-refs").write_text("\n".join(lines) + "\n")
    disk = DiskRefs(str(directory))
    for name in [*refs, *absent]:
        expected = f"{refs[name]:040x}" if name in refs else None
        assert disk.read(name) == expected, name
