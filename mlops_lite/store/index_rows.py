"""The run index's rows: made from a run's record, or from an archive's listing, and back.

One place decides what the index holds of a run, so a run indexed from its
record and the same run indexed from an archive's listing give the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Final

from mlops_lite.core.columns import is_number, run_columns
from mlops_lite.core.records import RunRecord, StepRecord, pack_value
from mlops_lite.core.status import FINISHED_STEP_STATUSES
from mlops_lite.store.archives import Listing
from mlops_lite.store.layout import RUNS_PREFIX, parse_run_ref

__all__ = ["RUN_COLUMNS", "IndexedRun", "from_record", "listing_rows", "to_listing", "unreadable"]

# The columns of ``runs`` a row is made of, in this order (``id`` and ``complete`` aside).
RUN_COLUMNS: Final = (
    "ref", "sha", "pipeline", "run_name", "status", "start_time", "end_time", "code_commit",
    "author", "host", "reason", "author_name", "parameters", "metadata",
)  # fmt: skip

_EMPTY: Final = pack_value({})
_RUNS_PREFIX_LENGTH: Final = len(RUNS_PREFIX)


@dataclass(frozen=True, slots=True)
class IndexedRun:
    """One run's row, its metric/parameter values and its cache keys, ready to insert."""

    row: tuple[Any, ...]  # RUN_COLUMNS
    values: list[tuple[str, bytes, float | None]]  # (column name, packed value, number)
    cache: list[tuple[str, str]]  # (cache key, step)

    @property
    def ref(self) -> str:
        """The run's ref."""
        return str(self.row[0])

    @property
    def sha(self) -> str:
        """The run commit."""
        return str(self.row[1])


def _text(value: object) -> str | None:
    """A text column's value from a record field that should be a string (and may not be)."""
    return value if isinstance(value, str) else None


def from_record(
    ref: str, sha: str, record: RunRecord, steps: dict[str, StepRecord], code_commit: str
) -> IndexedRun:
    """What the index holds of a run, from its record and its steps' records (or summaries)."""
    row = (
        ref, sha, record.pipeline_name, record.run_name, record.status,
        record.start_time, record.end_time, code_commit,
        _text(record.author.get("email")), _text(record.environment.get("host")), None,
        _text(record.author.get("name")), pack_value(record.parameters),
        pack_value(record.metadata) if record.metadata else _EMPTY,
    )  # fmt: skip
    values = [
        (column.name, pack_value(value), value if is_number(value) else None)
        for column, value in run_columns(
            record.parameters,
            record.metadata,
            ((name, step.metadata) for name, step in steps.items()),
        ).items()
    ]
    cache = [
        (str(step.cache_key), name)
        for name, step in steps.items()
        if step.cache_key and step.status in FINISHED_STEP_STATUSES
    ]
    return IndexedRun(row, values, cache)


def unreadable(ref: str, sha: str, reason: str) -> IndexedRun | None:
    """The row of a run this version cannot read: listed, with the reason."""
    parsed = parse_run_ref(ref)
    if parsed is None:
        return None
    pipeline, run_name = parsed
    row = (
        ref, sha, pipeline, run_name, "unreadable", None, None, None, None, None,
        reason[:1000], None, None, None,
    )  # fmt: skip
    return IndexedRun(row, [], [])


def listing_rows(
    listing: Listing, *, ids: Iterable[int] | None = None
) -> Iterator[tuple[Any, ...]]:
    """The rows of the runs of an archive's listing, in its order (values and cache apart).

    With ``ids``, each row starts with its run's id (a bulk load numbers its rows).
    """
    # Column by column (zip runs in C): a fresh clone makes 100,000 of these rows.
    # The listing's decoder checked every ref with ``parse_run_ref``: a split is enough.
    names = [ref[_RUNS_PREFIX_LENGTH:].partition("/") for ref in listing.refs]
    columns = (
        listing.refs, listing.shas, [name[0] for name in names], [name[2] for name in names],
        listing.statuses, listing.start_times, listing.end_times, listing.code_commits,
        listing.authors, listing.hosts, repeat(None), listing.author_names,
        listing.parameters, listing.metadata,
    )  # fmt: skip
    # Not strict: repeat(None) is endless; the decoder checked the columns' lengths.
    return zip(*columns, strict=False) if ids is None else zip(ids, *columns, strict=False)


def to_listing(
    rows: Sequence[tuple[Any, ...]],
    values: Sequence[tuple[int, str, bytes, float | None]],
    cache: Sequence[tuple[int, str, str]],
) -> Listing:
    """A listing of index rows (RUN_COLUMNS), with values and cache keys by row position."""
    listing = Listing()
    for row in rows:
        (ref, sha, _, _, status, start, end, code, author, host, _, author_name,
         parameters, metadata) = row  # fmt: skip
        listing.refs.append(ref)
        listing.shas.append(sha)
        listing.statuses.append(status)
        listing.start_times.append(start)
        listing.end_times.append(end)
        listing.code_commits.append(code)
        listing.authors.append(author)
        listing.author_names.append(author_name)
        listing.hosts.append(host)
        listing.parameters.append(bytes(parameters) if parameters is not None else _EMPTY)
        listing.metadata.append(bytes(metadata) if metadata is not None else _EMPTY)
    for position, name, value, number in values:
        listing.value_runs.append(position)
        listing.value_names.append(name)
        listing.value_data.append(bytes(value))
        listing.value_numbers.append(number)
    for position, key, step in cache:
        listing.cache_runs.append(position)
        listing.cache_keys.append(key)
        listing.cache_steps.append(step)
    return listing
