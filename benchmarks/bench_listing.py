"""Listing runs at scale: the derived index against git's own ref listing.

    python benchmarks/bench_listing.py [--runs 100000] [--repeat 5]

Builds N run commits of 10 steps (one pack, refs in packed-refs, as after a `git pack-refs`
or a fetch), then measures, each beside `git for-each-ref` on the same refs:
- building the index from nothing (once per clone, or after deleting it);
- listing the newest 20 runs with a warm index (what `mlops-lite runs list` does);
- the incremental refresh after one new run is recorded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median_time, scratch_dir

from mlops_lite.core.records import RunRecord, StepRecord
from mlops_lite.store import GitStore
from mlops_lite.store import objects as o
from mlops_lite.store.index import RunIndex
from mlops_lite.store.runs import build_run_commit, build_step_tree, run_ref

STEPS = 10


def make_repository(runs: int) -> str:
    root = scratch_dir("mlops-bench-list-")
    subprocess.run(["git", "init", "-q", root], check=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@x",
    }
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "code"], cwd=root, check=True, env=env
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    store = GitStore(root)
    objects: list[o.GitObject] = []
    packed = ["# pack-refs with: peeled fully-peeled sorted"]
    start = 1_700_000_000.0
    step_names = [f"step{i}" for i in range(STEPS)]
    step_tree, step_objects = build_step_tree(
        StepRecord(name="step", function="m.step", status="completed", cache_key="k"), "", {}
    )
    objects.extend(step_objects)
    refs = []
    for number in range(runs):
        name = f"{number:09d}"
        # As the runner writes it: the record carries a summary of its steps.
        summary = {
            step: {
                "status": "completed",
                "cache_key": f"{number}-{step}",
                "end_time": start + number,
                "outputs": {
                    "output": {
                        "artifact_id": step_tree.id,
                        "materializer": "builtins.msgpack",
                        "materializer_version": 1,
                        "type_name": "builtins.int",
                        "size": 1,
                        "uses_pickle": False,
                    }
                },
            }
            for step in step_names
        }
        record = RunRecord(
            run_name=name,
            pipeline_name=f"p{number % 10}",
            status="completed",
            start_time=start + number,
            end_time=start + number + 1,
            step_names=step_names,
            step_summary=summary,
        )
        commit, run_objects = build_run_commit(
            store, record, dict.fromkeys(step_names, step_tree.id), head
        )
        objects.extend(run_objects)
        refs.append((run_ref(record.pipeline_name, name), commit.id))
    store.write_objects(objects)
    packed.extend(f"{sha} {ref}" for ref, sha in sorted(refs))
    Path(root, ".git", "packed-refs").write_text("\n".join(packed) + "\n")
    store.close()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    root = make_repository(args.runs)
    print(f"built {args.runs} runs in {time.perf_counter() - started:.1f} s")
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
    commit, objects = build_run_commit(store, record, {}, head)
    store.write_objects(objects)
    store.update_ref(run_ref("p0", "new"), commit.id, None)
    started = time.perf_counter()
    index = RunIndex(store)
    index.refresh()
    incremental = time.perf_counter() - started
    assert index.runs(limit=1)[0].run_name == "new"
    index.close()
    print(f"refresh after 1 new run     : {incremental * 1000:8.1f} ms")
    store.close()
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
