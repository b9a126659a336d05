"""What every benchmark here shares: timing by median, and a scratch git repository."""

from __future__ import annotations

import os
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


def make_repo(prefix: str = "mlops-bench-") -> str:
    """A new git repository with one commit, in a temporary directory."""
    root = tempfile.mkdtemp(prefix=prefix)
    subprocess.run(["git", "init", "-q", root], check=True)
    Path(root, "README").write_text("bench\n")
    subprocess.run(["git", "add", "README"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=root, check=True, env={**os.environ, **IDENTITY})
    return root
