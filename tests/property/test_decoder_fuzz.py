"""Every decoder of stored or user-supplied bytes, fed arbitrary and mutated input in a child.

The only acceptable failure is an ``mlops_lite.errors`` error: no ``TypeError``,
``MemoryError`` (a declared size trusted for an allocation), ``RecursionError``,
hang, or dead interpreter (a segfault fails the test with the input that did it).
Hypothesis runs here, the decoding in ``decoder_child.py``.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHILD = Path(__file__).with_name("decoder_child.py")
ANSWER_TIMEOUT = 30.0


class Decoders:
    """The child process, restarted after it dies."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, str(CHILD)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        return self.process

    def decode(self, name: str, data: bytes) -> str:
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        frame = name.encode() + b"\0" + data
        try:
            process.stdin.write(struct.pack(">I", len(frame)) + frame)
            process.stdin.flush()
        except BrokenPipeError:
            pass
        ready, _, _ = select.select([process.stdout], [], [], ANSWER_TIMEOUT)
        if not ready:
            process.kill()
            process.wait()
            raise AssertionError(f"decoder {name} hung on {data[:200]!r}")
        answer = process.stdout.readline().decode().strip()
        if not answer:
            code = process.wait()
            raise AssertionError(f"decoder {name} killed the interpreter ({code}) on {data!r}")
        return answer

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def decoders() -> Iterator[Decoders]:
    child = Decoders()
    yield child
    child.close()


def _seeds() -> dict[str, list[bytes]]:
    import numpy as np
    import pandas as pd

    from mlops_lite.core import values
    from mlops_lite.core.records import OutputRecord, RunRecord, StepRecord, StepSummary, pack_value
    from mlops_lite.materializers import (
        NumpyArrayMaterializer,
        NumpyScalarMaterializer,
        PandasParquetMaterializer,
    )
    from mlops_lite.store import objects as o
    from mlops_lite.store.archives import Listing, build_root
    from mlops_lite.store.artifacts import ArtifactMeta

    output = OutputRecord(
        artifact_id="ab" * 20, materializer="builtins.msgpack", materializer_version=1,  # type: ignore[arg-type]
        type_name="builtins.int", size=3, digest="cd" * 16,
    )  # fmt: skip
    run = RunRecord(
        run_name="20260101-000000-000000-abcd", pipeline_name="p", status="completed",
        start_time=1.5, parameters={"lr": 0.1, "t": (1, (2, 3)), "big": 2**80, 3: b"x"},
        step_names=["a", "b"],
        step_summary={"a": StepSummary("completed", "ef" * 16, {"output": output}, 2.0)},  # type: ignore[arg-type]
    )  # fmt: skip
    step = StepRecord(name="a", function="m.a", status="completed", outputs={"output": output})
    # The artifact decoder stores its meta beside the 13-byte payload b"payload bytes".
    meta = ArtifactMeta("builtins.msgpack", 1, "builtins.bytes", 13, "none", False).encode()
    frame = msgpack.packb(["run", "refs/mlops/runs/p/r", "ab" * 20, "cd" * 20, 1, "host"])
    step_frame = msgpack.packb(["step", "a", "ef" * 20, [[3, b"blob body"]]], use_bin_type=True)
    journal = b"".join(struct.pack(">I", len(f)) + f for f in (frame, step_frame))
    frame_data = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    return {
        "run_record": [run.encode()],
        "step_record": [step.encode()],
        "record_value": [pack_value({"a": [1, (2, 3)], 2**70: None, "f": float("nan")})],
        "artifact_meta": [meta],
        "artifact": [meta],
        "builtin_msgpack": [
            values.pack({"s": {1, 2}, "f": frozenset({"a"}), "t": ((1,),)}, values.MATERIALIZER)
        ],
        "numpy": [
            NumpyArrayMaterializer().save(np.arange(12, dtype=">i4").reshape(3, 4)),
            NumpyArrayMaterializer().save(np.zeros(3, dtype=[("x", "<f8"), ("y", "u1")])),
        ],
        "numpy_scalar": [NumpyScalarMaterializer().save(np.float32(1.5))],
        "parquet": [PandasParquetMaterializer().save(frame_data)],
        "annotations": [pack_value({"run": {"a": 1}, "steps": {"s": {"b": [1, 2]}}})],
        "journal": [journal],
        "archive_listing": [
            Listing(
                refs=["refs/mlops/runs/p/r"],
                shas=["ab" * 20],
                statuses=["completed"],
                start_times=[1.5],
                end_times=[None],
                code_commits=["cd" * 20],
                authors=["a@x"],
                author_names=["A"],
                hosts=["h"],
                parameters=[pack_value({"lr": 0.1})],
                metadata=[pack_value({})],
                value_runs=[0],
                value_names=["param:lr"],
                value_data=[pack_value(0.1)],
                value_numbers=[0.1],
                cache_runs=[0],
                cache_keys=["ef" * 16],
                cache_steps=["a"],
            ).encode()
        ],
        # A root's archives.msgpack: the first object build_root returns.
        "root_listing": [build_root({"ab" * 20: 1, "cd" * 20: 2})[1][0].data],
        "ledger": [pack_value({"refs/mlops/runs/p/r": ["ab" * 20, 1.5, "a@x"]})],
        "config_yaml": [
            b"run_name: 'x-{date}'\nparameters: {lr: 0.1}\nsteps:\n  a: {seed: true}\n"
        ],
        "config_toml": [b'run_name = "x"\nenable_cache = false\n[parameters]\nlr = 0.1\n'],
        "config_json": [b'{"parameters": {"lr": 0.1}, "steps": {"a": {"enable_cache": false}}}'],
        "pyproject": [
            b'[tool.mlops-lite]\nactive_stack = "fast"\n'
            b'[tool.mlops-lite.stacks.fast]\norchestrator = "pool"\nworkers = 2\n'
        ],
        "tree": [o.tree({"a": (o.MODE_BLOB, "ab" * 20), "d": (o.MODE_TREE, "cd" * 20)}).data],  # type: ignore[list-item]
        # The directory decoder stores the blob b"payload bytes" as file "f".
        "directory_artifact": [o.tree({"f": (o.MODE_BLOB, o.blob(b"payload bytes").id)}).data],  # type: ignore[list-item]
        "registry_log": [_registry_log()],
    }


def _registry_log() -> bytes:
    from mlops_lite.core.registry import RegistryEvent, RegistryLog

    create = RegistryEvent(
        "ab" * 16, "create_version", 1.5, "a@b", version_id="cd" * 16, number=1,
        run={"pipeline": "p", "run": "r"}, metadata={"acc": 0.9}, artifact_id="ef" * 20,
        digest="01" * 16,
    )  # fmt: skip
    stage = RegistryEvent(
        "12" * 16, "set_stage", 2.5, "a@b", version_id="cd" * 16, stage="production", force=True
    )
    return RegistryLog("model", "churn", [create, stage]).encode()


SEEDS = _seeds()


@st.composite
def mutated(draw: Any, seeds: list[bytes]) -> bytes:
    """A valid encoding with a few bytes flipped, cut, inserted or repeated."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "set"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xC1, 0xC7, 0xD4, 0xDD, 0xFF]))
        elif kind == "cut":
            data = data[:position]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "repeat":
            end = draw(st.integers(position, len(data)))
            data[position:position] = data[position:end] * draw(st.integers(1, 3))
    return bytes(data)


FUZZ_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seeds_decode(decoders: Decoders, name: str) -> None:
    for seed in SEEDS[name]:
        assert decoders.decode(name, seed) == "ok"


@pytest.mark.parametrize("name", sorted(SEEDS))
@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_input_is_refused_cleanly(decoders: Decoders, name: str, data: Any) -> None:
    payload = data.draw(mutated(SEEDS[name]))
    answer = decoders.decode(name, payload)
    assert answer == "ok" or answer.startswith("refused "), (name, payload, answer)


@pytest.mark.parametrize("name", sorted(SEEDS))
@FUZZ_SETTINGS
@given(payload=st.binary(max_size=512))
def test_arbitrary_input_is_refused_cleanly(decoders: Decoders, name: str, payload: bytes) -> None:
    answer = decoders.decode(name, payload)
    assert answer == "ok" or answer.startswith("refused "), (name, payload, answer)


def _nested(opening: bytes, closing: bytes, depth: int) -> bytes:
    return opening * depth + closing * depth


HOSTILE = {
    "config_yaml": [
        # billion laughs: nine lists of nine aliases, nine levels deep
        b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + b"".join(
            b"%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n" % ((c,) * 2 + (c - 1,) * 9)
            for c in range(ord("b"), ord("j"))
        )
        + b"parameters: {x: *i}\n",
        b"parameters: &p {self: *p}\n",  # a mapping that contains itself
        b"parameters: " + _nested(b"[", b"]", 800),
    ],
    "config_json": [b'{"parameters": ' + _nested(b"[", b"]", 100_000) + b"}"],
    "config_toml": [b"x = " + _nested(b"[", b"]", 5000)],
    "pyproject": [b"[tool.mlops-lite]\nx = " + _nested(b"[", b"]", 5000)],
    "record_value": [
        _nested(b"\x91", b"", 100_000) + b"\xc0",  # arrays nested 100,000 deep
        b"\xdd\xff\xff\xff\xff",  # an array declaring 4 billion items
        b"\xc6\xff\xff\xff\xff",  # a bin declaring 4 GiB
    ],
    "journal": [b"\xff\xff\xff\xff" + b"\x00" * 16],
    "artifact": [msgpack.packb(["builtins.msgpack", 1, "builtins.bytes", 2**40, "none", False])],
}


@pytest.mark.parametrize(
    ("name", "payload"), [(name, payload) for name, cases in HOSTILE.items() for payload in cases]
)
def test_hostile_documents_are_refused_cleanly(
    decoders: Decoders, name: str, payload: bytes
) -> None:
    answer = decoders.decode(name, payload)
    assert answer.startswith("refused "), (name, payload[:100], answer)


def test_the_child_really_reports_a_crash() -> None:
    # The harness itself: a dead child must fail the test, not pass it.
    child = Decoders()
    process = child._start()
    process.kill()
    process.wait()
    child.process = process
    child._start = lambda: process  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="killed the interpreter"):
        child.decode("tree", b"")
    assert os.environ.get("PYTHONPATH") is not None
