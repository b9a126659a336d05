"""What every benchmark here shares: timing by median, and a scratch git repository."""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Benchmarks import the checkout they live in, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def median_time(function: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls: the machines are shared and noisy."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scratch_dir(prefix: str = "mlops-bench-") -> str:
    """A temporary directory removed when the benchmark exits: runs of 100 MB add up."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def make_repo(prefix: str = "mlops-bench-") -> str:
    """A new git repository with one commit, in a temporary directory removed at exit."""
    root = scratch_dir(prefix)
    subprocess.run(["git", "init", "-q", root], check=True)
    Path(root, "README").write_text("bench\n")
    subprocess.run(["git", "add", "README"], cwd=root, check=True)
    subprocess.run(
        ["git", "commit", "-qm", "init"], cwd=root, check=True, env={**os.environ, **IDENTITY}
    )
    return root
