"""Listing runs at scale: the derived index against git's own ref listing.

    python benchmarks/bench_listing.py [--runs 100000] [--repeat 5]

Copies N synthetic runs of 10 steps (``synthetic.py``: one pack, refs in packed-refs, as
after a `git pack-refs` or a fetch), then measures, each beside `git for-each-ref` on the same refs:
- building the index from nothing (once per clone, or after deleting it);
- listing the newest 20 runs with a warm index (what `mlops-lite runs list` does);
- the incremental refresh after one new run is recorded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median_time
from synthetic import synthetic_repository

from mlops_lite.core.records import RunRecord
from mlops_lite.store import GitStore
from mlops_lite.store.index import RunIndex
from mlops_lite.store.layout import build_run_commit, run_ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    root = synthetic_repository(args.runs, "mlops-bench-list-")
    print(f"copied {args.runs} runs in {time.perf_counter() - started:.1f} s")
    store = GitStore(root)

    started = time.perf_counter()
    index = RunIndex(store)
    index.refresh()
    cold = time.perf_counter() - started
    index.close()

    def git_list_all() -> None:
        subprocess.run(
            ["git", "for-each-ref", "--format=%(objectname) %(refname)", "refs/mlops/runs/"],
            cwd=root,
            capture_output=True,
            check=True,
        )

    def git_newest_20() -> None:
        subprocess.run(
            [
                "git",
                "for-each-ref",
                "--count=20",
                "--sort=-committerdate",
                "--format=%(objectname) %(refname)",
                "refs/mlops/runs/",
            ],
            cwd=root,
            capture_output=True,
            check=True,
        )

    def ours_newest_20() -> None:
        index = RunIndex(store)
        index.refresh()
        rows = index.runs(limit=20)
        assert len(rows) == 20
        index.close()

    git_all = median_time(git_list_all, args.repeat)
    print(
        f"index build, {args.runs} runs     : {cold:8.3f} s"
        f"   (git for-each-ref of all refs: {git_all:.3f} s)"
    )
    ours = median_time(ours_newest_20, args.repeat)
    theirs = median_time(git_newest_20, args.repeat)
    print(
        f"newest 20 runs, warm index  : {ours * 1000:8.1f} ms"
        "  git for-each-ref --sort=-committerdate --count=20: "
        f"{theirs * 1000:.1f} ms  ratio {theirs / ours:.1f}x faster"
    )

    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    record = RunRecord(
        run_name="new", pipeline_name="p0", status="completed", start_time=time.time()
    )
    commit, objects = build_run_commit(store.identity, record, {}, head)
    store.write_objects(objects).release()
    store.refs.compare_and_swap(run_ref("p0", "new"), None, commit.id)
    started = time.perf_counter()
    index = RunIndex(store)
    index.refresh()
    incremental = time.perf_counter() - started
    assert index.runs(limit=1)[0].run_name == "new"
    index.close()
    print(f"refresh after 1 new run     : {incremental * 1000:8.1f} ms")
    store.close()


if __name__ == "__main__":
    main()
