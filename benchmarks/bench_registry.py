"""What the model and artifact registries cost a run, beside the same run without them.

    python benchmarks/bench_registry.py [--repeat 5] [--steps 20]

- per-step overhead of a chain whose steps have *named* outputs (each execution
  is a new artifact version: its objects written and the artifact's registry
  chain moved when the step is recorded), against the same chain with unnamed
  outputs, uncached, in the same process;
- what a run with ``model=Model(...)`` adds (a model version created when it
  starts), against the same run without a model;
- reading the newest version of an artifact with N versions.

Figures are medians over the repetitions; the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Annotated

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import IDENTITY, make_repo, median_time


def bench(repeat: int, steps: int) -> None:
    from mlops_lite import Client, Model, pipeline, step

    def plain(x: int) -> int:
        return x + 1

    def named(x: int) -> Annotated[int, "counter"]:
        return x + 1

    unnamed_step, named_step = step(plain), step(named)

    def chain(step_: object, model: Model | None) -> object:
        @pipeline(name=f"chain_{'named' if step_ is named_step else 'plain'}", model=model)
        def run(start: int = 0) -> None:
            value = step_(start)  # type: ignore[operator]
            for _ in range(steps - 1):
                value = step_(value)  # type: ignore[operator]

        return run.with_options(enable_cache=False)

    counter = iter(range(10**9))
    baseline = median_time(lambda: chain(unnamed_step, None)(start=next(counter)), repeat)
    versioned = median_time(lambda: chain(named_step, None)(start=next(counter)), repeat)
    modelled = median_time(
        lambda: chain(unnamed_step, Model(name="bench"))(start=next(counter)), repeat
    )
    per_step = (versioned - baseline) / steps * 1000
    print(
        f"{steps}-step chain, named outputs : {versioned * 1000:8.1f} ms  -> "
        f"+{per_step:.3f} ms per versioned output   unnamed outputs: {baseline * 1000:.1f} ms"
    )
    print(
        f"{steps}-step chain with a model   : {modelled * 1000:8.1f} ms  -> "
        f"+{(modelled - baseline) * 1000:.1f} ms per run   without: {baseline * 1000:.1f} ms"
    )
    versions = len(Client().list_artifact_versions("counter"))
    newest = median_time(lambda: Client().get_artifact_version("counter"), repeat)
    print(f"newest version of an artifact with {versions} versions: {newest * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    os.environ.update(IDENTITY)
    os.chdir(make_repo("mlops-bench-registry-"))
    bench(args.repeat, args.steps)


if __name__ == "__main__":
    main()
