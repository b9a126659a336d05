"""The child process of the decoder fuzz tests: decodes what it is sent, reports how it went.

Run as a script. Reads frames ``<4-byte length><decoder name> NUL <bytes>`` from
stdin and answers one line per frame: ``ok``, ``refused <error class>`` (an
``mlops_lite.errors`` error: the only allowed failure) or ``wrong <exception>``.
If a decoder kills the interpreter (a segfault, the C stack overflowing), the
parent sees the pipe close and fails the test with the input that did it.
Address space is capped, so trusting a declared size shows up as MemoryError.
"""

from __future__ import annotations

import os
import resource
import struct
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from mlops_lite.errors import MlopsLiteError


def _run_record(data: bytes) -> Any:
    from mlops_lite.core.records import RunRecord

    return RunRecord.decode(data)


def _step_record(data: bytes) -> Any:
    from mlops_lite.core.records import StepRecord

    return StepRecord.decode(data)


def _record_value(data: bytes) -> Any:
    from mlops_lite.core.records import unpack_value

    return unpack_value(data)


def _artifact_meta(data: bytes) -> Any:
    from mlops_lite.store.artifacts import ArtifactMeta

    return ArtifactMeta.decode(data)


def _builtin_msgpack(data: bytes) -> Any:
    from mlops_lite.materializers import MsgpackMaterializer

    return MsgpackMaterializer().load(data)


def _numpy(data: bytes) -> Any:
    from mlops_lite.materializers import NumpyArrayMaterializer

    return NumpyArrayMaterializer().load(data)


def _numpy_scalar(data: bytes) -> Any:
    from mlops_lite.materializers import NumpyScalarMaterializer

    return NumpyScalarMaterializer().load(data)


def _parquet(data: bytes) -> Any:
    from mlops_lite.materializers import PandasParquetMaterializer

    return PandasParquetMaterializer().load(data)


def _annotations(data: bytes) -> Any:
    from mlops_lite.store.annotations import decode_state

    return decode_state(data)


def _journal(data: bytes) -> Any:
    from mlops_lite.errors import RecordError
    from mlops_lite.store.journal import parse_journal

    contents = parse_journal(data)
    if contents is None:  # how the journal reader refuses bytes that hold no run
        raise RecordError("not a journal")
    return contents


def _archive_listing(data: bytes) -> Any:
    from mlops_lite.store.archives import Listing

    # Its value and cache columns are checked when first read: read them all.
    return Listing.decode(data, where="fuzzed archive").complete()


def _root_listing(data: bytes) -> Any:
    from mlops_lite.store.archives import _decode_root

    return _decode_root(data, where="fuzzed root")


def _ledger(data: bytes) -> Any:
    from mlops_lite.store.ledgers import DELETED_REF, decode_ledger

    return decode_ledger(DELETED_REF, data, where="fuzzed ledger")


def _config(extension: str) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        from mlops_lite.definition.config import parse_config, parse_config_bytes

        return parse_config(parse_config_bytes(data, extension, source="fuzz" + extension))

    return decode


def _pyproject(data: bytes) -> Any:
    from mlops_lite.execution.stacks import stacks_of
    from mlops_lite.store.project_config import parse_project_config

    return stacks_of(parse_project_config(data))


def _tree(data: bytes) -> Any:
    from mlops_lite.store.objects import parse_tree

    return parse_tree(data)


def _artifact(data: bytes) -> Any:
    """A whole artifact read from a memory store: ``data`` is its meta, with a small payload."""
    from mlops_lite.store import MemoryStore
    from mlops_lite.store import objects as o
    from mlops_lite.store.artifacts import read_artifact

    store = MemoryStore()
    meta, payload = o.blob(data), o.blob(b"payload bytes")
    tree = o.tree({"meta": (o.MODE_BLOB, meta.id), "data": (o.MODE_BLOB, payload.id)})
    store.write_objects([meta, payload, tree])
    return read_artifact(store.read_object, tree.id, read_many=store.read_blobs)


def _directory_artifact(data: bytes) -> Any:
    """A directory artifact (codec ``tree``) whose ``data`` tree is ``data``."""
    from mlops_lite.core.archive import encode_files
    from mlops_lite.store import MemoryStore
    from mlops_lite.store import objects as o
    from mlops_lite.store.artifacts import ArtifactMeta, read_artifact

    store = MemoryStore()
    size = len(encode_files({"f": b"payload bytes"}))
    meta = o.blob(ArtifactMeta("m", 1, "t", size, "tree", False).encode())
    files, payload = o.make_object(o.TREE, data), o.blob(b"payload bytes")
    tree = o.tree({"meta": (o.MODE_BLOB, meta.id), "data": (o.MODE_TREE, files.id)})
    store.write_objects([meta, files, payload, tree])
    return read_artifact(store.read_object, tree.id, read_many=store.read_blobs)


def _registry_log(data: bytes) -> Any:
    """A registry's log as a teammate pushes it, and what its events add up to."""
    from mlops_lite.core.registry import RegistryLog, fold

    log = RegistryLog.decode(data)
    return fold(log.registry, log.name, log.events)


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "run_record": _run_record,
    "step_record": _step_record,
    "record_value": _record_value,
    "artifact_meta": _artifact_meta,
    "artifact": _artifact,
    "builtin_msgpack": _builtin_msgpack,
    "numpy": _numpy,
    "numpy_scalar": _numpy_scalar,
    "parquet": _parquet,
    "annotations": _annotations,
    "journal": _journal,
    "archive_listing": _archive_listing,
    "root_listing": _root_listing,
    "ledger": _ledger,
    "config_yaml": _config(".yaml"),
    "config_toml": _config(".toml"),
    "config_json": _config(".json"),
    "pyproject": _pyproject,
    "tree": _tree,
    "directory_artifact": _directory_artifact,
    "registry_log": _registry_log,
}


def main() -> None:
    limit = 2 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.chdir(tempfile.mkdtemp(prefix="decoder-fuzz-"))
    stdin, stdout = sys.stdin.buffer, sys.stdout
    while header := stdin.read(4):
        (length,) = struct.unpack(">I", header)
        frame = stdin.read(length)
        name, _, data = frame.partition(b"\0")
        try:
            DECODERS[name.decode()](data)
            answer = "ok"
        except MlopsLiteError as error:
            answer = f"refused {type(error).__name__}"
        except BaseException as error:  # everything else is what the test hunts for
            answer = f"wrong {type(error).__name__}: {str(error)[:300]!r}"
        stdout.write(answer.replace("\n", " ") + "\n")
        stdout.flush()


if __name__ == "__main__":
    main()
