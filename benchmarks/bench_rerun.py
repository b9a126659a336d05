"""What `mlops-lite rerun` adds to a run: a 20-step pipeline, original against rerun.

    python benchmarks/bench_rerun.py [--repeat 5] [--steps 20]

- original: ``python pipeline.py`` in a fresh interpreter, cache off, so every
  step executes (what a user waits for);
- rerun (CLI): ``python -m mlops_lite rerun <sha>`` of that run — a CLI
  interpreter, the code tree materialized in a temporary directory, a second
  interpreter running the pipeline, and the output comparison;
- rerun (library): ``mlops_lite.operations.rerun.rerun(sha)`` called in this process,
  which leaves out the CLI interpreter's start-up;
- materialize: ``git read-tree`` + ``checkout-index`` of the code commit alone.

Figures are medians over the repetitions; the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

LIBRARY_ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, LIBRARY_ROOT)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median_time, scratch_dir  # noqa: E402

PIPELINE = textwrap.dedent(
    """
    from mlops_lite import pipeline, step

    @step
    def source(n: int = 20000) -> list:
        return [float(i % 97) for i in range(n)]

    @step
    def stage(values: list, k: int) -> list:
        return [v * 0.5 + k for v in values]

    @pipeline(enable_cache=False)
    def chain(steps: int = {steps}) -> None:
        values = source()
        for k in range(steps - 1):
            values = stage(values, k=k)

    if __name__ == "__main__":
        print(chain().sha)
    """
)


def make_project(steps: int) -> str:
    root = scratch_dir("mlops-bench-rerun-")
    Path(root, "pipeline.py").write_text(PIPELINE.replace("{steps}", str(steps)))
    subprocess.run(["git", "init", "-q", "-b", "main", root], check=True)
    subprocess.run(["git", "add", "pipeline.py"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "pipeline"], cwd=root, check=True)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    python_path = [LIBRARY_ROOT, os.environ.get("PYTHONPATH")]
    os.environ.update(
        {
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
            "PYTHONPATH": os.pathsep.join(filter(None, python_path)),
        }
    )  # fmt: skip
    from mlops_lite.operations.rerun import rerun
    from mlops_lite.store.checkout import materialize_tree

    root = make_project(args.steps)
    try:
        shas: list[str] = []

        def original() -> None:
            completed = subprocess.run(
                [sys.executable, "pipeline.py"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            )
            shas.append(completed.stdout.strip().splitlines()[-1])

        original_time = median_time(original, args.repeat)
        sha = shas[0]

        def rerun_cli() -> None:
            completed = subprocess.run(
                [sys.executable, "-m", "mlops_lite", "rerun", sha],
                cwd=root,
                capture_output=True,
                text=True,
            )
            if completed.returncode != 0:
                raise SystemExit(
                    f"rerun did not reproduce:\n{completed.stdout}\n{completed.stderr}"
                )

        def rerun_library() -> None:
            report = rerun(sha, path=root)
            if report.exit_code != 0:
                raise SystemExit(f"rerun did not reproduce: {report.error or report.outputs}")

        def materialize() -> None:
            with tempfile.TemporaryDirectory() as destination:
                materialize_tree(root, sha_code, destination)

        sha_code = subprocess.run(
            ["git", "rev-parse", f"{sha}^1"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        cli_time = median_time(rerun_cli, args.repeat)
        library_time = median_time(rerun_library, args.repeat)
        materialize_time = median_time(materialize, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"{args.steps}-step pipeline, medians of {args.repeat} (Python {sys.version.split()[0]})")
    print(f"  original run (python pipeline.py)   {original_time:7.3f} s")
    print(
        f"  rerun, CLI (python -m mlops_lite)    {cli_time:7.3f} s"
        f"   x{cli_time / original_time:.2f}"
        f"   {cli_time - original_time:+.3f} s"
    )
    print(
        f"  rerun, library call                  {library_time:7.3f} s"
        f"   x{library_time / original_time:.2f}"
        f"   {library_time - original_time:+.3f} s"
    )
    print(f"  of which materializing the code tree {materialize_time:7.3f} s")
    verdict = "within" if cli_time - original_time < 0.5 else "OVER"
    print(f"  target: under 0.5 s added by the CLI rerun -> {verdict}")


if __name__ == "__main__":
    main()
