"""A ZenML custom materializer, ported by changing its imports: files under ``self.uri``.

What it writes becomes a git tree inside the artifact (readable with ``git show``),
equal directories give equal artifact ids, and another process loads the value back.
The hardened reader checks it like any artifact: against its digest (or each blob
against its git id), every blob counting for a cache hit, hostile trees refused.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import msgpack
import pytest

from mlops_lite import Client
from mlops_lite.core.archive import encode_files
from mlops_lite.core.hashing import content_digest
from mlops_lite.errors import MissingObjectError, RecordError, StoreError
from mlops_lite.store import GitStore, MemoryStore
from mlops_lite.store.artifacts import (
    CHUNK_MAX,
    ArtifactMeta,
    artifact_present,
    build_artifact,
    chunk_boundaries,
    read_artifact,
    read_artifact_layout,
)
from mlops_lite.store.objects import MODE_BLOB, MODE_TREE, TREE, GitObject, blob, parse_tree, tree
from tests.conftest import git, run_script

MATERIALIZER = textwrap.dedent(
    """
    import json
    import os
    from typing import Any, Type

    from mlops_lite.enums import ArtifactType
    from mlops_lite.io import fileio
    from mlops_lite.materializers.base_materializer import BaseMaterializer


    class Recipe:
        def __init__(self, name: str, steps: list[str]) -> None:
            self.name = name
            self.steps = steps


    class RecipeMaterializer(BaseMaterializer):
        ASSOCIATED_TYPES = (Recipe,)
        ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

        def load(self, data_type: Type[Any]) -> Recipe:
            with fileio.open(os.path.join(self.uri, "recipe.json"), "r") as f:
                content = json.load(f)
            with open(os.path.join(self.uri, "steps", "all.txt")) as f:
                steps = f.read().splitlines()
            return data_type(content["name"], steps)

        def save(self, data: Recipe) -> None:
            with fileio.open(os.path.join(self.uri, "recipe.json"), "w") as f:
                json.dump({"name": data.name}, f)
            fileio.makedirs(os.path.join(self.uri, "steps"))
            with open(os.path.join(self.uri, "steps", "all.txt"), "w") as f:
                f.write("\\n".join(data.steps))
    """
)

PIPELINE = textwrap.dedent(
    """
    from typing import Annotated
    from mlops_lite import pipeline, step
    from recipes import Recipe

    @step
    def cook(n: int = 2) -> Annotated[Recipe, "recipe"]:
        return Recipe("soup", [f"step {i}" for i in range(n)])

    @step
    def count(recipe: Recipe) -> int:
        return len(recipe.steps)

    @pipeline
    def kitchen(n: int = 2):
        count(cook(n=n))

    if __name__ == "__main__":
        kitchen()
    """
)

READER = textwrap.dedent(
    """
    from mlops_lite.client import Client
    import recipes  # registers the materializer, as importing it does in ZenML

    recipe = Client().get_artifact_version("recipe").load()
    print(type(recipe).__name__, recipe.name, recipe.steps)
    """
)


def test_a_zenml_materializer_writes_files_that_become_a_git_tree(project: Path) -> None:
    (project / "recipes.py").write_text(MATERIALIZER)
    (project / "kitchen.py").write_text(PIPELINE)
    (project / "read.py").write_text(READER)
    run_script(project, "kitchen.py")

    run = Client(project).get_pipeline("kitchen").last_run
    assert run.steps["count"].output.load() == 2
    artifact = run.steps["cook"].outputs["recipe"]
    assert artifact.materializer == "recipes.RecipeMaterializer"
    assert git(project, "show", f"{artifact.id}:data/recipe.json") == '{"name": "soup"}'
    assert git(project, "show", f"{artifact.id}:data/steps/all.txt") == "step 0\nstep 1"
    assert Client(project).get_artifact_version("recipe").type == "DataArtifact"

    read = run_script(project, "read.py")
    assert read.stdout.strip() == "Recipe soup ['step 0', 'step 1']"
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)


def test_a_directory_artifact_round_trips_and_large_files_are_chunked() -> None:
    big = bytes(range(256)) * (CHUNK_MAX // 256 + 5)
    payload = encode_files({"a.json": json.dumps([1]).encode(), "deep/er/big.bin": big})
    store = MemoryStore()
    artifact, objects = build_artifact(
        payload, materializer="m", materializer_version=1, type_name="t", uses_pickle=False,
        files=True,
    )  # fmt: skip
    store.write_objects(objects)
    data = parse_tree(store.read_object(parse_tree(store.read_object(artifact.id))["data"][1]))
    assert set(data) == {"a.json", "deep"}
    deeper = parse_tree(store.read_object(parse_tree(store.read_object(data["deep"][1]))["er"][1]))
    assert deeper["big.bin.mlops-chunks"][0] == MODE_TREE
    meta, read_back = read_artifact(store.read_object, artifact.id)
    assert meta.codec == "tree" and bytes(read_back) == payload
    again, _ = build_artifact(
        payload, materializer="m", materializer_version=1, type_name="t", uses_pickle=False,
        files=True,
    )  # fmt: skip
    assert again.id == artifact.id


@pytest.mark.parametrize(
    ("files", "message"),
    [({"a": b"x", "a/b": b"y"}, "below a file"), ({"x.mlops-chunks": b"y"}, "ends with")],
)
def test_a_directory_that_cannot_be_a_tree_is_refused(
    files: dict[str, bytes], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        build_artifact(
            encode_files(files), materializer="m", materializer_version=1, type_name="t",
            uses_pickle=False, files=True,
        )  # fmt: skip


def _directory(store: MemoryStore | GitStore, payload: bytes) -> str:
    artifact, objects = build_artifact(
        payload, materializer="m", materializer_version=1, type_name="t", uses_pickle=False,
        files=True,
    )  # fmt: skip
    store.write_objects(objects).release()
    return artifact.id


def test_a_directory_artifact_is_loaded_only_when_its_digest_matches(project: Path) -> None:
    payload = encode_files({"model.json": b"{}", "weights/w.bin": b"\x00" * 1000})
    with GitStore.open(project) as store:
        artifact_id = _directory(store, payload)
        meta, read_back = store.read_artifact(artifact_id, digest=content_digest(payload))
        assert meta.codec == "tree" and bytes(read_back) == payload
        _, unchecked = store.read_artifact(artifact_id)  # no digest: each blob by its git id
        assert bytes(unchecked) == payload
        with pytest.raises(StoreError, match="does not match the digest"):
            store.read_artifact(artifact_id, digest=content_digest(b"something else"))


def test_every_blob_of_a_directory_artifact_counts_for_a_cache_hit() -> None:
    big = bytes(range(256)) * (CHUNK_MAX // 256 + 5)
    files = {"a.json": b"[1]", "deep/big.bin": big, "deep/c.txt": b"c"}
    store = MemoryStore()
    artifact_id = _directory(store, encode_files(files))
    meta_id, blob_ids = read_artifact_layout(store.read_object, artifact_id)
    assert len(blob_ids) == 2 + len(list(chunk_boundaries(big)))
    assert artifact_present(store.read_object, store.has_object, artifact_id)
    del store.objects[blob_ids[-1]]  # deep/c.txt is gone: the hit must run again
    assert not artifact_present(store.read_object, store.has_object, artifact_id)
    with pytest.raises(MissingObjectError):
        read_artifact(store.read_object, artifact_id)


def _crafted(store: MemoryStore, data: GitObject, *, codec: str = "tree", size: int = 10) -> str:
    """An artifact tree around ``data`` (a tree or a blob), its meta declaring ``codec``."""
    meta = blob(ArtifactMeta("m", 1, "t", size, codec, False).encode())
    mode = MODE_TREE if data.type_num == TREE else MODE_BLOB
    artifact = tree({"meta": (MODE_BLOB, meta.id), "data": (mode, data.id)})
    store.write_objects([meta, data, artifact])
    return artifact.id


def test_hostile_directory_trees_are_refused_with_a_record_error() -> None:
    store = MemoryStore()
    file_blob = blob(b"x")
    store.write_objects([file_blob])
    climbing = tree({"..": (MODE_BLOB, file_blob.id)})
    link = tree({"link": (0o120000, file_blob.id)})
    # Shared subtrees: 2**40 files named by a few dozen small trees.
    level = tree({"f": (MODE_BLOB, file_blob.id)})
    store.write_objects([climbing, link, level])
    deep = level
    for _ in range(40):
        level = tree({"a": (MODE_TREE, level.id), "b": (MODE_TREE, level.id)})
        store.write_objects([level])
    for _ in range(100):
        deep = tree({"d": (MODE_TREE, deep.id)})
        store.write_objects([deep])
    cases = [
        (_crafted(store, climbing), "is not a file name"),
        (_crafted(store, link), "has mode 120000"),
        (_crafted(store, level, size=2**61), "more than 1000000 entries"),
        (_crafted(store, deep), "nest more than 64 levels"),
        (_crafted(store, file_blob), "whose `data` is not a tree"),
        (_crafted(store, tree({"x": (MODE_BLOB, file_blob.id)}), codec="none"), "chunk list"),
    ]
    for artifact_id, message in cases:
        with pytest.raises(RecordError, match=message):
            read_artifact(store.read_object, artifact_id)


def test_a_directory_payload_that_is_not_canonical_is_refused() -> None:
    # Reading rebuilds the payload from the tree, so only the canonical form round-trips.
    unsorted = msgpack.packb(["mlops-lite-files/1", [["b", b"1"], ["a", b"2"]]])
    with pytest.raises(StoreError, match="canonical"):
        build_artifact(
            unsorted, materializer="m", materializer_version=1, type_name="t",
            uses_pickle=False, files=True,
        )  # fmt: skip
