"""Large array outputs: written once, recorded without a copy, and an out-of-memory that says so.

Each pipeline runs in its own interpreter; the repository is checked with git.
Memory is measured as the child's ``ru_maxrss`` (a ratio to the array's size,
never a time).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from mlops_lite import Client
from mlops_lite.core.payload import Payload
from mlops_lite.store.artifacts import chunk_boundaries
from tests.conftest import git, run_script

np = pytest.importorskip("numpy")

SIZE = 24 * 1024 * 1024  # ~11 chunks

CHANGING = textwrap.dedent(
    f"""
    import sys
    import numpy as np
    from mlops_lite import pipeline, step

    SIZE = {SIZE}

    @step
    def data(version: int) -> np.ndarray:
        array = np.frombuffer(np.random.default_rng(0).bytes(SIZE), dtype=np.uint8).copy()
        if version:
            block = np.random.default_rng(version).bytes(SIZE // 100)
            array[SIZE // 2 : SIZE // 2 + SIZE // 100] = np.frombuffer(block, dtype=np.uint8)
        return array

    @pipeline
    def dataset(version: int = 0):
        data(version)

    dataset.with_options(quiet=True)(version=int(sys.argv[1]))
    """
)


def _array(version: int) -> object:
    array = np.frombuffer(np.random.default_rng(0).bytes(SIZE), dtype=np.uint8).copy()
    if version:
        block = np.random.default_rng(version).bytes(SIZE // 100)
        array[SIZE // 2 : SIZE // 2 + SIZE // 100] = np.frombuffer(block, dtype=np.uint8)
    return array


def _chunk_ids(array: object) -> set[str]:
    """The git ids of the chunks an array's .npy payload is stored as."""
    from mlops_lite.materializers import get_materializer

    payload = get_materializer("numpy.npy").save_payload(array)
    assert isinstance(payload, Payload)
    ids = set()
    for start, end in chunk_boundaries(payload):
        piece = payload.span(start, end)
        sha = hashlib.sha1(b"blob %d\x00" % len(piece), usedforsecurity=False)
        sha.update(piece)
        ids.add(sha.hexdigest())
    return ids


def _packed_ids(pack_dir: Path, indexes: set[str]) -> set[str]:
    """Every object id the packs of these ``.idx`` files hold (``git show-index``)."""
    found: set[str] = set()
    for name in indexes:
        with open(pack_dir / name, "rb") as index:
            shown = subprocess.run(
                ["git", "show-index"], stdin=index, capture_output=True, text=True, check=True
            ).stdout
        found.update(line.split()[1] for line in shown.splitlines())
    return found


def test_a_second_run_writes_only_the_chunks_that_changed(project: Path) -> None:
    (project / "changing.py").write_text(CHANGING)
    pack_dir = project / ".git" / "objects" / "pack"
    run_script(project, "changing.py", "0")
    first_packs = {p.name for p in pack_dir.glob("*.idx")}
    run_script(project, "changing.py", "1")
    new_packs = {p.name for p in pack_dir.glob("*.idx")} - first_packs

    old_chunks, new_chunks = _chunk_ids(_array(0)), _chunk_ids(_array(1))
    changed = new_chunks - old_chunks
    assert 0 < len(changed) < len(new_chunks) / 2  # the data really share most chunks
    written = _packed_ids(pack_dir, new_packs)
    assert written & new_chunks == changed  # no chunk the repository had is written again
    assert not list(pack_dir.glob("*.keep"))  # the first run's pack was kept only meanwhile
    git(project, "fsck", "--strict", "--no-dangling")
    with Client(project) as client:
        runs = client.get_pipeline("dataset").runs
        loaded = [run.steps["data"].output.load() for run in runs]
    assert sorted(bytes(value[SIZE // 2 : SIZE // 2 + 8]) for value in loaded) == sorted(
        bytes(_array(version)[SIZE // 2 : SIZE // 2 + 8])  # type: ignore[index]
        for version in (0, 1)
    )


def test_chunks_in_a_pack_another_writer_keeps_are_written_again(project: Path) -> None:
    # That writer may release its keep at any moment, and the pack is then
    # not protected until this run's ref names the chunks: safer to write them.
    (project / "changing.py").write_text(CHANGING)
    pack_dir = project / ".git" / "objects" / "pack"
    run_script(project, "changing.py", "0")
    old_chunks = _chunk_ids(_array(0))
    (first,) = [
        p.name for p in pack_dir.glob("*.idx") if _packed_ids(pack_dir, {p.name}) & old_chunks
    ]
    foreign = pack_dir / first.replace(".idx", ".keep")
    foreign.write_text("kept by someone else\n")
    run_script(project, "changing.py", "1")
    new_packs = {p.name for p in pack_dir.glob("*.idx")} - {first}
    assert _chunk_ids(_array(1)) <= _packed_ids(pack_dir, new_packs)
    assert foreign.read_text() == "kept by someone else\n"


MEASURED = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from mlops_lite import pipeline, step

    SIZE = int(sys.argv[1])

    def peak() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    # Filled a MiB at a time: no temporary copy of it raises the peak before it is measured.
    array = np.empty(SIZE, dtype=np.uint8)
    rng = np.random.default_rng(0)
    for start in range(0, SIZE, 1 << 20):
        array[start : start + (1 << 20)] = np.frombuffer(rng.bytes(1 << 20), dtype=np.uint8)
    before = peak()

    @step
    def weights() -> np.ndarray:
        return array

    @pipeline(enable_cache=False)
    def train():
        weights()

    train.with_options(quiet=True)()
    print(json.dumps({"before": before, "after": peak()}))
    """
)


def test_recording_an_array_needs_little_memory_beyond_the_array(project: Path) -> None:
    # Before payloads were streamed the .npy was joined into bytes: 2x the array.
    size = 200 * 1024 * 1024
    (project / "measured.py").write_text(MEASURED)
    measured = json.loads(run_script(project, "measured.py", str(size)).stdout.splitlines()[-1])
    beyond = (measured["after"] - measured["before"]) / size
    # The array itself is in `before` (made before the baseline): recording adds ~2%.
    assert beyond <= 0.2, f"recording took {beyond:.2f}x the array beyond it"


LIMITED = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from mlops_lite import pipeline, step

    SIZE = int(sys.argv[1])

    @step
    def small() -> int:
        return 7

    @step
    def model(n: int) -> dict:
        # A dict is pickled: the pickle is a second copy of the array.
        return {"weights": np.ones(SIZE, dtype=np.uint8)}

    @pipeline(enable_cache=False)
    def train():
        model(small())

    def virtual_size() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmSize")

    # Room for the array and some slack, not for a second copy of it.
    limit = virtual_size() + SIZE * 3 // 2
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    train.with_options(quiet=True)()
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_an_output_too_large_for_memory_fails_with_an_error_that_says_so(project: Path) -> None:
    size = 200 * 1024 * 1024
    (project / "limited.py").write_text(LIMITED)
    completed = run_script(project, "limited.py", str(size), check=False)
    assert completed.returncode != 0
    last = completed.stderr.strip().splitlines()[-1]
    assert "StepFailedError" in last, completed.stderr
    assert "OutputTooLargeError" in last
    assert "step 'model', output 'output': out of memory" in last
    assert "register a materializer" not in completed.stderr
    # Nothing recorded is lost: the run, its first step and its value are there.
    with Client(project) as client:
        (run,) = client.get_pipeline("train").runs
        assert run.status == "failed"
        assert run.steps["small"].output.load() == 7
        failed = run.steps["model"]
        assert failed.status == "failed"
        error = failed.error or ""
    assert "while materializer 'cloudpickle' saved its dict value (200.0 MiB)" in error
    assert "Return a smaller output" in error
    git(project, "fsck", "--strict", "--no-dangling")


COMPRESSIBLE = textwrap.dedent(
    """
    import numpy as np
    from mlops_lite import pipeline, step

    @step
    def ramp() -> np.ndarray:
        # 100 MB of 4-bit values: zstd keeps about half, in 50 MB of new memory.
        return np.random.default_rng(0).integers(0, 16, 100_000_000, dtype=np.uint8)

    @pipeline(enable_cache=False)
    def smooth():
        ramp()

    smooth.with_options(quiet=True)()
    """
)


def test_a_compressible_array_is_written_in_parts_and_reads_back(project: Path) -> None:
    # Its compressed chunks are new memory: written as they pile up, not held to the end.
    (project / "smooth.py").write_text(COMPRESSIBLE)
    run_script(project, "smooth.py")
    pack_dir = project / ".git" / "objects" / "pack"
    chunk_packs = [p for p in pack_dir.glob("*.pack") if p.stat().st_size > 8 * 1024 * 1024]
    assert len(chunk_packs) >= 2
    with Client(project) as client:
        (run,) = client.get_pipeline("smooth").runs
        value = run.steps["ramp"].output.load()
    expected = np.random.default_rng(0).integers(0, 16, 100_000_000, dtype=np.uint8)
    assert np.array_equal(value, expected)
    git(project, "fsck", "--strict", "--no-dangling")


TWICE = textwrap.dedent(
    f"""
    import numpy as np
    from mlops_lite import pipeline, step

    @step
    def first() -> np.ndarray:
        return np.frombuffer(np.random.default_rng(0).bytes({SIZE}), dtype=np.uint8).copy()

    @step
    def second() -> np.ndarray:
        return np.frombuffer(np.random.default_rng(0).bytes({SIZE}), dtype=np.uint8).copy()

    @pipeline(enable_cache=False)
    def twice():
        first()
        second()

    twice.with_options(quiet=True)()
    """
)


def test_chunks_a_run_already_wrote_are_not_written_again_by_its_next_step(project: Path) -> None:
    # The first step's pack is kept by this run until its ref is written: safe to reuse.
    (project / "twice.py").write_text(TWICE)
    run_script(project, "twice.py")
    pack_dir = project / ".git" / "objects" / "pack"
    chunks = _chunk_ids(_array(0))
    holding = [p.name for p in pack_dir.glob("*.idx") if _packed_ids(pack_dir, {p.name}) & chunks]
    assert len(holding) == 1
    assert not list(pack_dir.glob("*.keep"))
    git(project, "fsck", "--strict", "--no-dangling")


RECORDING_FAILS = textwrap.dedent(
    """
    import numpy as np
    import mlops_lite.store.runs as runs
    from mlops_lite import pipeline, step

    # Memory runs out while the output is recorded (after the step saved it).
    built = runs.build_artifact

    def build_artifact(payload, **options):
        if len(payload) > 1_000_000:
            raise MemoryError
        return built(payload, **options)

    runs.build_artifact = build_artifact

    @step
    def small() -> int:
        return 7

    @step
    def big(n: int) -> np.ndarray:
        return np.zeros(2_000_000, dtype=np.uint8)

    @step
    def after(values: np.ndarray) -> int:
        return len(values)

    @pipeline(enable_cache=False)
    def train():
        after(big(small()))

    train.with_options(quiet=True)()
    """
)


def test_an_output_that_runs_out_of_memory_while_recorded_fails_its_step(project: Path) -> None:
    (project / "recording.py").write_text(RECORDING_FAILS)
    completed = run_script(project, "recording.py", check=False)
    assert completed.returncode != 0
    last = completed.stderr.strip().splitlines()[-1]
    assert "StepFailedError: step 'big'" in last, completed.stderr
    assert "step 'big', output 'output': out of memory while recording it (1.9 MiB)" in last
    with Client(project) as client:
        (run,) = client.get_pipeline("train").runs
        assert run.status == "failed"
        assert run.steps["small"].output.load() == 7
        assert run.steps["big"].status == "failed"
        assert run.steps["after"].status == "skipped"
    git(project, "fsck", "--strict", "--no-dangling")
