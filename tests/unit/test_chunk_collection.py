"""Collecting chunks: each backend's way of saying when a chunk was written, and what is kept."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from mlops_lite.store.blobstore import ArtifactStoreConfig, ChunkStore, StoredChunk, _modified
from mlops_lite.store.chunk_collection import collect_chunks

WRITTEN = 1_700_000_000.0
UTC = datetime.UTC


@pytest.mark.parametrize(
    "info",
    [
        {"mtime": WRITTEN},  # file://
        {"mtime": datetime.datetime.fromtimestamp(WRITTEN, tz=UTC)},  # sftp
        {"LastModified": datetime.datetime.fromtimestamp(WRITTEN, tz=UTC)},  # s3
        {"updated": "2023-11-14T22:13:20Z"},  # gs
        {"LastModified": datetime.datetime.fromtimestamp(WRITTEN, tz=UTC).replace(tzinfo=None)},
    ],
)
def test_each_backends_modification_time_is_read(info: dict[str, object]) -> None:
    assert _modified({"size": 3, **info}) == WRITTEN


@pytest.mark.parametrize("info", [{}, {"mtime": None}, {"updated": "yesterday"}, {"mtime": True}])
def test_no_time_is_none(info: dict[str, object]) -> None:
    assert _modified({"size": 3, **info}) is None


class ListedStore(ChunkStore):
    """A store whose listing is given: what collect_chunks decides, without a server."""

    def __init__(self, tmp_path: Path, listed: list[StoredChunk]) -> None:
        super().__init__(ArtifactStoreConfig("memory://team"), str(tmp_path / "waiting"))
        self.cache_dir = str(tmp_path / "cache")
        self.listed = listed
        self.removed: list[str] = []

    def stored(self) -> list[StoredChunk]:
        return self.listed

    def remove_stored(self, digests: list[str]) -> None:
        self.removed += digests


def test_a_chunk_without_a_time_is_never_deleted_and_used_ones_stay(tmp_path: Path) -> None:
    used, untimed, old, fresh = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
    store = ListedStore(
        tmp_path,
        [
            StoredChunk(used, 10, 0.0),
            StoredChunk(untimed, 10, None),
            StoredChunk(old, 10, 0.0),
            StoredChunk(fresh, 10, 1000.0),
        ],
    )
    found = collect_chunks(store, {used}, grace_seconds=100, dry_run=True, now=1050.0)
    assert (found.deleted, found.untimed, found.recent, found.referenced) == (1, 1, 1, 1)
    assert store.removed == []
    collect_chunks(store, {used}, grace_seconds=100, dry_run=False, now=1050.0)
    assert store.removed == [old]
