"""Large arrays: the 4 GiB round trip and a 1%-changed 500 MB array, each beside numpy.

    python benchmarks/bench_large.py [--gib 4] [--changed-mb 500] [--only round-trip,changed]

``MLOPS_LITE_BENCH_GIB`` sets ``--gib``'s default, for machines with less memory
(the round trip needs ~1.2x the array for recording, plus the page cache).

Each figure beside its baseline from the same run:

- ``round-trip``: a step returning an N-byte float array, recorded, then loaded
  by another process (time and peak memory of each process), against
  ``np.save`` + ``np.load`` of the same array to a file;
- ``changed``: a 500 MB array recorded, then the same with 1% of it changed
  (one contiguous block, as an appended or edited slice is): the bytes ``.git``
  grows by before any ``git gc``, against the bytes that changed.

Peak memory is the child process's maximum resident size less that of the same
interpreter once numpy and mlops_lite are imported, as a multiple of N.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import IDENTITY, make_repo

SECTIONS = ("round-trip", "changed")

SAVE = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from mlops_lite import pipeline, step

    size = int(sys.argv[1])

    @step
    def make() -> np.ndarray:
        # Random bits: incompressible, like trained weights; made in place (one copy).
        bits = np.random.default_rng(0).integers(0, 2**63, size // 8, dtype=np.int64)
        return bits.view(np.float64)

    @pipeline(enable_cache=False)
    def big():
        make()

    began = time.perf_counter()
    run = big.with_options(quiet=True)()
    print(run.name, time.perf_counter() - began)
    """
)
LOAD = textwrap.dedent(
    """
    import sys, time
    from mlops_lite import Client

    began = time.perf_counter()
    with Client() as client:
        value = client.get_pipeline_run(sys.argv[1]).steps["make"].output.load()
    print(value.nbytes, time.perf_counter() - began)
    """
)
NUMPY_SAVE = textwrap.dedent(
    """
    import sys, time
    import numpy as np

    size = int(sys.argv[1])
    array = np.random.default_rng(0).integers(0, 2**63, size // 8, dtype=np.int64).view(np.float64)
    began = time.perf_counter()
    np.save(sys.argv[2], array)
    print(time.perf_counter() - began)
    """
)
NUMPY_LOAD = textwrap.dedent(
    """
    import sys, time
    import numpy as np

    began = time.perf_counter()
    array = np.load(sys.argv[1])
    print(array.nbytes, time.perf_counter() - began)
    """
)
IDLE = "import numpy, mlops_lite"


def run_measured(code: str, *args: str, cwd: str) -> tuple[str, int]:
    """Stdout and peak RSS (bytes) of a Python child process (waited for with wait4)."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    out = process.stdout.read()
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(err)
    return out.strip(), usage.ru_maxrss * 1024


def bench_round_trip(size: int) -> None:
    root = make_repo("mlops-bench-large-")
    Path(root, "save.py").write_text(SAVE)
    subprocess.run(["git", "add", "save.py"], cwd=root, check=True)
    subprocess.run(
        ["git", "commit", "-qm", "save"], cwd=root, check=True, env={**os.environ, **IDENTITY}
    )
    _, idle = run_measured(IDLE, cwd=root)
    saved, save_peak = run_measured(Path(root, "save.py").read_text(), str(size), cwd=root)
    name, save_time = saved.split()
    loaded, load_peak = run_measured(LOAD, name, cwd=root)
    load_time = float(loaded.split()[1])
    target = os.path.join(root, "array.npy")
    numpy_saved, numpy_save_peak = run_measured(NUMPY_SAVE, str(size), target, cwd=root)
    numpy_loaded, numpy_load_peak = run_measured(NUMPY_LOAD, target, cwd=root)
    gib = size / 2**30

    def share(peak: int) -> str:
        return f"{(peak - idle) / 2**30:5.2f} GiB ({(peak - idle) / size:4.2f}x N)"

    print(f"round trip of a {gib:.1f} GiB array (peak memory above an idle interpreter)")
    print(
        f"  record : {float(save_time):6.2f} s, peak {share(save_peak)}   "
        f"np.save : {float(numpy_saved):6.2f} s, peak {share(numpy_save_peak)}"
    )
    print(
        f"  load   : {load_time:6.2f} s, peak {share(load_peak)}   "
        f"np.load : {float(numpy_loaded.split()[1]):6.2f} s, peak {share(numpy_load_peak)}"
    )
    print()


CHANGED = textwrap.dedent(
    """
    import sys
    import numpy as np
    from mlops_lite import pipeline, step

    size, version = int(sys.argv[1]), int(sys.argv[2])

    @step
    def data(version: int) -> np.ndarray:
        array = np.frombuffer(np.random.default_rng(0).bytes(size), dtype=np.uint8).copy()
        if version:
            start = size // 2
            changed = np.random.default_rng(version).bytes(size // 100)
            array[start : start + size // 100] = np.frombuffer(changed, dtype=np.uint8)
        return array

    @pipeline
    def dataset(version: int = 0):
        data(version)

    dataset.with_options(quiet=True)(version=version)
    """
)


def git_bytes(root: str) -> int:
    total = 0
    for directory, _, files in os.walk(os.path.join(root, ".git", "objects")):
        total += sum(os.path.getsize(os.path.join(directory, name)) for name in files)
    return total


def bench_changed(size: int) -> None:
    root = make_repo("mlops-bench-changed-")
    run_measured(CHANGED, str(size), "0", cwd=root)
    before = git_bytes(root)
    run_measured(CHANGED, str(size), "1", cwd=root)
    added = git_bytes(root) - before
    print(f"a {size / 1e6:.0f} MB array with 1% of it changed, recorded again")
    print(
        f"  .git grew by {added / 1e6:7.1f} MB before any gc   "
        f"(bytes changed: {size // 100 / 1e6:.1f} MB; the whole array: {size / 1e6:.0f} MB)"
    )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gib", type=float, default=float(os.environ.get("MLOPS_LITE_BENCH_GIB", "4"))
    )
    parser.add_argument("--changed-mb", type=int, default=500)
    parser.add_argument("--only", default=",".join(SECTIONS))
    args = parser.parse_args()
    os.environ.update(IDENTITY)
    os.environ["MALLOC_ARENA_MAX"] = "2"
    began = time.perf_counter()
    for name in args.only.split(","):
        if name == "round-trip":
            bench_round_trip(int(args.gib * 2**30) // 8 * 8)
        elif name == "changed":
            bench_changed(args.changed_mb * 1_000_000)
    print(f"({time.perf_counter() - began:.0f} s in all)")


if __name__ == "__main__":
    main()
