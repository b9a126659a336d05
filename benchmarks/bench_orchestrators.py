"""Orchestrator benchmarks, each beside the local orchestrator in the same process.

    python benchmarks/bench_orchestrators.py [--repeat 3] [--seconds 0.5] [--no-dask]

- 4 independent CPU-bound steps (pure Python, ~``--seconds`` each): wall time of
  the run with ``local``, ``pool`` (2 workers), ``dask`` on a LocalCluster the run
  starts itself, and ``dask`` on a cluster already running; speedups vs local;
- per-step overhead of ``pool`` on trivial steps: a 50-step chain and a 50-wide
  fan-out, uncached, against ``local`` (the pool starts once per run, and its
  start-up is part of the figure), and the pool's start-up alone.

Figures are medians over the repetitions; the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import make_repo, median_time

from mlops_lite import pipeline, step

CHAIN = 50


@step
def burn(seed: int, n: int) -> int:
    total = seed
    for i in range(n):
        total = (total * 31 + i) % 1_000_003
    return total


@pipeline(enable_cache=False)
def four_cpu_steps(n: int = 1000) -> None:
    for seed in range(4):
        burn(seed, n)


@step
def increment(x: int) -> int:
    return x + 1


@pipeline(enable_cache=False)
def chain(start: int = 0) -> None:
    value = increment(start)
    for _ in range(CHAIN - 1):
        value = increment(value)


@pipeline(enable_cache=False)
def fan_out(start: int = 0) -> None:
    increment.map(x=list(range(start, start + CHAIN)))


def iterations_for(seconds: float) -> int:
    n = 300_000
    start = time.perf_counter()
    burn.entrypoint(0, n)
    return int(n * seconds / (time.perf_counter() - start))


def bench_cpu(repeat: int, seconds: float, with_dask: bool) -> None:
    n = iterations_for(seconds)
    runs: dict[str, Callable[[], object]] = {
        "local": lambda: four_cpu_steps.with_options(orchestrator="local")(n=n),
        "pool (2 workers)": lambda: four_cpu_steps.with_options(orchestrator="pool", workers=2)(
            n=n
        ),
    }
    cluster = None
    if with_dask:
        import logging

        from distributed import LocalCluster

        runs["dask, cluster per run"] = lambda: four_cpu_steps.with_options(
            orchestrator="dask", workers=2
        )(n=n)
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            scheduler_kwargs={"dashboard_address": ":0"},
        )
        address = cluster.scheduler_address
        runs["dask, running cluster"] = lambda: four_cpu_steps.with_options(
            orchestrator="dask", address=address
        )(n=n)
    try:
        figures = {name: median_time(run, repeat) for name, run in runs.items()}
    finally:
        if cluster is not None:
            cluster.close()
    local = figures["local"]
    print(f"4 CPU-bound steps of ~{seconds:g} s each (2 cores), median of {repeat}:")
    for name, seconds_taken in figures.items():
        print(
            f"  {name:<24} {seconds_taken:7.2f} s   speedup vs local {local / seconds_taken:5.2f}x"
        )


def bench_pool_overhead(repeat: int) -> None:
    import pickle
    from multiprocessing.connection import wait

    from mlops_lite.execution.orchestrators.pool import _Worker
    from mlops_lite.execution.orchestrators.worker import READY
    from mlops_lite.execution.task import WorkerSetup

    def start_one_worker() -> None:
        worker = _Worker(pickle.dumps(WorkerSetup.from_driver(with_sys_path=True)))
        wait([worker.results])
        assert worker.results.recv_bytes() == READY
        worker.tasks.close()
        worker.process.wait()
        worker.close_pipes()

    startup = median_time(start_one_worker, repeat)
    counter = iter(range(10**9))
    for name, shape in (("chain", chain), ("fan-out", fan_out)):
        local = median_time(
            lambda p=shape: p.with_options(orchestrator="local")(start=next(counter)), repeat
        )
        pool = median_time(
            lambda p=shape: p.with_options(orchestrator="pool")(start=next(counter)), repeat
        )
        per_step = (pool - local) / CHAIN * 1000
        print(
            f"{CHAIN}-step {name:<8} local {local * 1000:7.1f} ms   pool {pool * 1000:7.1f} ms   "
            f"-> pool overhead {per_step:5.2f} ms/step incl. start-up (target <= 20 ms)"
        )
    print(
        f"pool worker start-up (spawn, import, ready): {startup * 1000:.1f} ms,"
        " once per worker per run"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    os.chdir(make_repo("mlops-bench-orch-"))
    with_dask = not args.no_dask
    if with_dask:
        try:
            import distributed  # noqa: F401
        except ImportError:
            print("(dask not installed: pip install 'mlops-lite[dask]'; skipping the dask figures)")
            with_dask = False
    bench_pool_overhead(args.repeat)
    bench_cpu(args.repeat, args.seconds, with_dask)


if __name__ == "__main__":
    main()
