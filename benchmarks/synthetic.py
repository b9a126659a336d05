"""Many synthetic runs, written fast: the fixture of the benchmarks that measure scale.

Each run is what the runner records, without executing anything: a run commit
pinned to the project's one code commit, whose record holds parameters,
metadata and a summary of 10 steps (cache keys, outputs, a metric), and whose
steps share one step subtree. Everything goes into one pack and every ref into
a sorted ``packed-refs``, as after ``git pack-refs`` or a fetch.

Building 100,000 runs takes a while, so a finished repository is kept under
``$TMPDIR/mlops-bench-fixtures/`` keyed by its parameters and copied for each
benchmark (``cp -a``): delete that folder to build it again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import IDENTITY, scratch_dir

from mlops_lite.core.records import OutputRecord, RunRecord, StepRecord, StepSummary
from mlops_lite.store import GitStore
from mlops_lite.store import objects as o
from mlops_lite.store.layout import build_run_commit, build_step_tree, run_ref
from mlops_lite.store.objects import Identity

STEPS = 10
PIPELINES = ("train", "evaluate", "sweep", "ingest")
# A fixture made by another version of this file is not reused.
_FORMAT = 1
_CACHE = Path(tempfile.gettempdir()) / "mlops-bench-fixtures"


def run_name(start: float, number: int) -> str:
    """A name shaped like the runner's (``20261123-114844-123456-3f9a``)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(start))
    suffix = hashlib.blake2b(str(number).encode(), digest_size=2).hexdigest()
    return f"{stamp}-{int(start * 1e6) % 1_000_000:06d}-{suffix}"


def _records(runs: int, step_tree: str) -> list[RunRecord]:
    start = 1_700_000_000.0
    step_names = [f"step{i}" for i in range(STEPS)]
    records = []
    for number in range(runs):
        began = start + number * 60.0
        lr = round(0.001 * (1 + number % 1000), 6)
        summary = {
            step: StepSummary(
                status="completed",
                cache_key=hashlib.blake2b(f"{number}-{step}".encode(), digest_size=16).hexdigest(),
                outputs={
                    "output": OutputRecord(
                        artifact_id=step_tree,  # type: ignore[arg-type]
                        materializer="builtins.msgpack",
                        materializer_version=1,
                        type_name="builtins.int",
                        size=1,
                    )
                },
                end_time=began + 1,
                metadata={"accuracy": round(1 - lr / 2, 6)} if step == step_names[-1] else {},
                data_files={},
            )
            for step in step_names
        }
        records.append(
            RunRecord(
                run_name=run_name(began, number),
                pipeline_name=PIPELINES[number % len(PIPELINES)],
                status="completed",
                start_time=began,
                end_time=began + 2,
                parameters={"lr": lr, "epochs": 1 + number % 7, "model": "resnet"},
                step_names=step_names,
                metadata={"seed": number},
                environment={"host": "bench-host", "python": "3.11"},
                author={"name": "Bench", "email": "bench@example.com"},
                step_summary=summary,
            )
        )
    return records


def _build(root: str, runs: int) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", root], check=True)
    Path(root, "train.py").write_text("print('train')\n")
    subprocess.run(["git", "add", "train.py"], cwd=root, check=True)
    subprocess.run(
        ["git", "commit", "-q", "-m", "code"], cwd=root, check=True, env={**os.environ, **IDENTITY}
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    store = GitStore(root)
    identity = Identity("Bench", "bench@example.com")
    step_tree, objects = build_step_tree(
        StepRecord(name="step", function="m.step", status="completed", cache_key="k"), "", {}
    )
    refs = []
    for record in _records(runs, step_tree.id):
        steps = dict.fromkeys(record.step_names, step_tree.id)
        commit, run_objects = build_run_commit(identity, record, steps, head)  # type: ignore[arg-type]
        objects.extend(run_objects)
        refs.append((run_ref(record.pipeline_name, record.run_name), commit.id))
    store.write_objects(objects).release()
    store.close()
    lines = ["# pack-refs with: peeled fully-peeled sorted "]
    lines += [f"{sha} {ref}" for ref, sha in sorted(refs)]
    heads = Path(root, ".git", "refs", "heads", "main")
    lines.append(f"{heads.read_text().strip()} refs/heads/main")
    heads.unlink()
    lines[1:] = sorted(lines[1:], key=lambda line: line.split(" ", 1)[1])
    Path(root, ".git", "packed-refs").write_text("\n".join(lines) + "\n")


def _layout_version() -> str | None:
    """Which layout this version of mlops_lite keeps runs in (None: one ref per run).

    A hash of the modules that decide it (folding, archives, maintenance and
    this file), so a change to any of them builds a new fixture.
    """
    try:
        from mlops_lite.operations import retention
        from mlops_lite.store import archives, folding, maintenance
    except ImportError:
        return None
    modules = (retention, archives, folding, maintenance)
    sources = b"".join(Path(m.__file__).read_bytes() for m in modules)  # type: ignore[arg-type]
    sources += Path(__file__).read_bytes()
    return hashlib.blake2b(sources, digest_size=6).hexdigest()


def _maintain(root: str) -> None:
    """What background maintenance leaves: packs merged, and a commit-graph if it writes one."""
    from mlops_lite.store import maintenance

    subprocess.run(["git", "repack", "-d", "-q", "--geometric=2"], cwd=root, check=True)
    write_commit_graph = getattr(maintenance, "write_commit_graph", None)
    if write_commit_graph is not None:
        write_commit_graph(root)


def _cached(key: str, build: Callable[[str], None]) -> Path:
    cached = _CACHE / key
    if not (cached / ".git" / "packed-refs").exists():
        _CACHE.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=key + ".", dir=_CACHE))
        began = time.perf_counter()
        build(str(building / "repo"))
        if not cached.exists():
            os.replace(building / "repo", cached)
        shutil.rmtree(building, ignore_errors=True)
        print(f"(built {key} in {time.perf_counter() - began:.1f} s: {cached})")
    return cached


def synthetic_repository(runs: int, prefix: str = "mlops-bench-", *, layout: bool = False) -> str:
    """A fresh copy of a project with ``runs`` synthetic runs (built once, then cached).

    ``layout``: as this version of mlops_lite lays runs out at scale (old ones
    folded into archives), when it has a layout of its own.
    """
    key = f"runs{runs}-steps{STEPS}-format{_FORMAT}"
    cached = _cached(key, lambda root: _build(root, runs))
    version = _layout_version() if layout else None
    if version is not None:

        def fold(root: str) -> None:
            from mlops_lite.operations.retention import tidy

            subprocess.run(["cp", "-a", str(cached), root], check=True)
            tidy(root)
            _maintain(root)

        cached = _cached(f"{key}-layout{version}", fold)
    target = Path(scratch_dir(prefix)) / "project"
    subprocess.run(["cp", "-a", str(cached), str(target)], check=True)
    return str(target)


def add_objects(root: str, objects: list[o.GitObject]) -> None:
    """Write objects into the repository as one pack."""
    with GitStore(root) as store:
        store.write_objects(objects).release()
