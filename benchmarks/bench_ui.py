"""The dashboard at scale: the runs page and the compare page at 100, 10,000 and 100,000 runs.

    python benchmarks/bench_ui.py [--runs 100,10000,100000] [--repeat 5] [--compare 10]

For each size, builds N synthetic runs (5 steps each, with parameters and step
metrics, refs in packed-refs as after a fetch), warms the index once, then
measures over HTTP on loopback, each beside a baseline from the same process:
the same bytes served as a static file by the standard library's
SimpleHTTPRequestHandler. "First byte" is the time until the response's
headers arrive (our pages are rendered before they are sent); "full" until the
whole body has been read. Medians.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import IDENTITY, scratch_dir

from mlops_lite.core.records import RunRecord, StepRecord
from mlops_lite.store import GitStore
from mlops_lite.store import objects as o
from mlops_lite.store.index import RunIndex
from mlops_lite.store.layout import build_run_commit, build_step_tree, run_ref
from mlops_lite.ui.server import DashboardServer

STEPS = ("load", "split", "train", "evaluate", "report")


def make_repository(runs: int) -> str:
    root = scratch_dir("mlops-bench-ui-")
    subprocess.run(["git", "init", "-q", root], check=True)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "code"],
        cwd=root,
        check=True,
        env={**os.environ, **IDENTITY},
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    store = GitStore(root)
    objects: list[o.GitObject] = []
    refs = []
    start = 1_700_000_000.0
    for number in range(runs):
        lr = round(0.001 * (1 + number % 1000), 6)
        steps = {}
        summaries = {}
        for step_name in STEPS:
            metadata = (
                {"accuracy": round(1 - lr / 2, 6), "loss": lr} if step_name == "evaluate" else {}
            )
            step = StepRecord(
                name=step_name,
                function=f"m.{step_name}",
                status="completed",
                cache_key=f"{number}-{step_name}",
                start_time=start + number,
                end_time=start + number + 0.1,
                metadata=metadata,
            )
            step_tree, step_objects = build_step_tree(step, "", {})
            objects.extend(step_objects)
            steps[step_name] = step_tree.id
            summaries[step_name] = step.summary()
        record = RunRecord(
            run_name=f"{number:09d}",
            pipeline_name=f"p{number % 10}",
            status="completed" if number % 13 else "failed",
            start_time=start + number,
            end_time=start + number + 1,
            parameters={"lr": lr, "batch": 32 * (1 + number % 4), "seed": number % 3},
            step_names=list(STEPS),
            step_summary=summaries,
            author={"name": "b", "email": f"user{number % 5}@example.com"},
        )
        commit, run_objects = build_run_commit(store.identity, record, steps, head)
        objects.extend(run_objects)
        refs.append((run_ref(record.pipeline_name, record.run_name), commit.id))
    store.write_objects(objects)
    packed = ["# pack-refs with: peeled fully-peeled sorted"]
    packed.extend(f"{sha} {ref}" for ref, sha in sorted(refs))
    Path(root, ".git", "packed-refs").write_text("\n".join(packed) + "\n")
    store.close()
    return root


def fetch(port: int, path: str) -> tuple[float, float, bytes]:
    """(seconds to the headers, seconds to the end of the body, body) of one GET."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("GET", path)
    response = connection.getresponse()
    first = time.perf_counter() - started
    body = response.read()
    full = time.perf_counter() - started
    connection.close()
    assert response.status == 200, (path, response.status, body[:300])
    return first, full, body


def medians(port: int, path: str, repeat: int) -> tuple[float, float, bytes]:
    results = [fetch(port, path) for _ in range(repeat)]
    firsts = sorted(r[0] for r in results)
    fulls = sorted(r[1] for r in results)
    return firsts[len(firsts) // 2], fulls[len(fulls) // 2], results[-1][2]


class _QuietStaticHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def measure(runs: int, repeat: int, compared: int) -> None:
    started = time.perf_counter()
    root = make_repository(runs)
    built = time.perf_counter() - started
    store = GitStore(root)
    started = time.perf_counter()
    index = RunIndex(store)
    index.refresh()
    newest = [row.sha for row in index.runs(limit=compared)]
    cold = time.perf_counter() - started
    index.close()
    store.close()
    print(f"\n{runs:,} runs (built in {built:.1f} s, index built in {cold:.1f} s)")

    ours = DashboardServer(root)
    serve(ours)
    static_dir = tempfile.mkdtemp(prefix="mlops-bench-ui-static-")
    handler = partial(_QuietStaticHandler, directory=static_dir)
    baseline = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serve(baseline)
    pages = [
        ("runs page (50 of them)", "/"),
        (
            f"compare page ({compared} runs)",
            "/compare?" + "&".join(f"run={sha}" for sha in newest),
        ),
    ]
    try:
        for label, path in pages:
            first, full, body = medians(ours.server_address[1], path, repeat)
            name = f"page{abs(hash(path))}.html"
            Path(static_dir, name).write_bytes(body)
            base_first, base_full, _ = medians(baseline.server_address[1], "/" + name, repeat)
            print(
                f"  {label:<26} first byte {first * 1000:8.1f} ms  full {full * 1000:8.1f} ms"
                f"  ({len(body) / 1024:.0f} KiB)   static file: first byte "
                f"{base_first * 1000:.1f} ms, full {base_full * 1000:.1f} ms"
            )
    finally:
        for server in (ours, baseline):
            server.shutdown()
            server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", default="100,10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compare", type=int, default=10, help="runs on the compare page")
    args = parser.parse_args()
    for runs in (int(n) for n in args.runs.split(",")):
        measure(runs, args.repeat, args.compare)


if __name__ == "__main__":
    main()
