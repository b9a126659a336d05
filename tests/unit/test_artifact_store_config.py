"""The artifact store's settings and chunk pointers: wrong ones are clear errors."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from mlops_lite.errors import ConfigError, RecordError
from mlops_lite.store.artifacts import build_artifact, decode_pointer, read_artifact
from mlops_lite.store.blobstore import (
    ArtifactStoreConfig,
    ChunkStore,
    artifact_store_config,
    chunk_digest,
)
from mlops_lite.store.memory import MemoryStore


def configure(root: Path, body: str) -> ArtifactStoreConfig | None:
    (root / "pyproject.toml").write_text("[tool.mlops-lite]\n" + body)
    return artifact_store_config(str(root))


def test_the_store_is_read_from_pyproject(tmp_path: Path) -> None:
    assert configure(tmp_path, "") is None
    config = configure(
        tmp_path,
        'artifact_store = "s3://bucket/prefix/"\nartifact_store_threshold = "8 MiB"\n'
        'artifact_store_options = {endpoint_url = "http://minio:9000"}\n',
    )
    assert config == ArtifactStoreConfig(
        "s3://bucket/prefix", 8 * 1024 * 1024, {"endpoint_url": "http://minio:9000"}
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('artifact_store = "bucket/prefix"', "must be a URL such as 's3://bucket/prefix'"),
        ('artifact_store = "s3://b"\nartifact_store_threshold = "big"', "must be a size"),
        ('artifact_store_threshold = "1 MiB"', "artifact_store_threshold is set but"),
        (
            'artifact_store = "s3://b"\nartifact_store_options = {secret = "x", key = "y"}',
            "holds key, secret: credentials do not belong in pyproject.toml",
        ),
    ],
)
def test_wrong_settings_are_config_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"tool\.mlops-lite") as caught:
        configure(tmp_path, body)
    assert message in str(caught.value)


def test_a_large_artifact_keeps_a_pointer_in_git_and_its_chunks_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_LITE_CACHE_DIR", str(tmp_path / "cache"))
    chunks = ChunkStore(ArtifactStoreConfig("file:///nowhere", threshold=1000), str(tmp_path / "w"))
    payload = bytes(range(256)) * 100_000  # 25.6 MB: several chunks, compressible
    tree, objects = build_artifact(
        payload,
        materializer="builtin.bytes",
        materializer_version=1,
        type_name="builtins.bytes",
        uses_pickle=False,
        chunk_store=chunks,
    )
    assert sum(len(o.data) for o in objects) < 10_000  # git holds kilobytes
    store = MemoryStore()
    store.write_objects(objects)
    assert len(chunks.pending()) >= 1
    meta, back = read_artifact(store.read_object, tree.id, chunk_store=lambda: chunks)
    assert bytes(back) == payload and meta.size == len(payload)
    with pytest.raises(ConfigError, match="none is configured here"):
        read_artifact(store.read_object, tree.id)
    small, _ = build_artifact(
        b"x" * 999,
        materializer="builtin.bytes",
        materializer_version=1,
        type_name="builtins.bytes",
        uses_pickle=False,
        chunk_store=chunks,
    )
    assert (
        small.id
        == build_artifact(
            b"x" * 999,
            materializer="builtin.bytes",
            materializer_version=1,
            type_name="builtins.bytes",
            uses_pickle=False,
        )[0].id
    )  # under the threshold: the same artifact as without a store


@pytest.mark.parametrize(
    "data",
    [
        b"\x00",
        msgpack.packb(["other", 1, []]),
        msgpack.packb(["mlops-lite-chunks", 2, []]),
        msgpack.packb(["mlops-lite-chunks", 1, [["short", 3]]]),
        msgpack.packb(["mlops-lite-chunks", 1, [[chunk_digest(b""), -1]]]),
    ],
)
def test_a_pointer_that_is_not_one_is_a_record_error(data: bytes) -> None:
    with pytest.raises(RecordError, match="artifact x"):
        decode_pointer(data, "artifact x")
