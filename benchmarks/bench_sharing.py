"""Push and pull of 1,000 runs: mlops_lite (git CLI and dulwich transports) against plain git."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlops_lite.operations import sharing

REFSPEC = "refs/mlops/*:refs/mlops/*"
STEPS = 10


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    return (
        subprocess.run(["git", *args], cwd=cwd, input=stdin, check=True, capture_output=True)
        .stdout.decode()
        .strip()
    )


def fast_import_runs(project: Path, first: int, count: int, code_commit: str) -> None:
    """Write `count` runs with `git fast-import`: one pack, like the store writes a run."""
    chunks: list[bytes] = []
    now = int(time.time())
    for number in range(first, first + count):
        name = f"run-{number:05d}"
        message = f"run bench/{name}".encode()
        chunks.append(f"commit refs/mlops/runs/bench/{name}\n".encode())
        chunks.append(f"committer Bench <bench@example.com> {now + number} +0000\n".encode())
        chunks.append(b"data %d\n%s\n" % (len(message), message))
        chunks.append(f"from {code_commit}\ndeleteall\n".encode())
        files = {"run.msgpack": f"run {name} params lr=0.{number}"}
        for step in range(STEPS):
            files[f"steps/step-{step:02d}/record.msgpack"] = f"{name} step {step} record"
            files[f"steps/step-{step:02d}/outputs/output"] = f"output of {step} in {name} " * 4
            files[f"steps/step-{step:02d}/logs.txt"] = f"log line for step {step}\n"  # shared
        for path, text in files.items():
            data = text.encode()
            chunks.append(f"M 100644 inline {path}\n".encode())
            chunks.append(b"data %d\n%s\n" % (len(data), data))
    git(project, "fast-import", "--quiet", stdin=b"".join(chunks))


def make_project(root: Path, runs: int) -> Path:
    project = root / "project"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    (project / "train.py").write_text("print('train')\n")
    git(project, "add", "train.py")
    git(project, "commit", "-q", "-m", "code")
    fast_import_runs(project, 0, runs, git(project, "rev-parse", "HEAD"))
    return project


def new_bare(root: Path, name: str) -> Path:
    git(root, "init", "-q", "--bare", "--initial-branch=main", name)
    return root / name


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def plain_push(project: Path, bare: Path) -> None:
    git(project, "push", "--quiet", str(bare), REFSPEC)


def plain_fetch(clone: Path, bare: Path) -> None:
    git(clone, "fetch", "--quiet", "--no-tags", str(bare), REFSPEC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-sharing-") as scratch:
        root = Path(scratch)
        os.environ.update(
            HOME=str(root), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Bench",
            GIT_AUTHOR_EMAIL="bench@example.com", GIT_COMMITTER_NAME="Bench",
            GIT_COMMITTER_EMAIL="bench@example.com",
        )  # fmt: skip
        began = time.perf_counter()
        project = make_project(root, options.runs)
        objects = git(project, "count-objects", "-v").split("in-pack: ")[1].split()[0]
        print(
            f"{options.runs} runs x {STEPS} steps: {objects} objects in one pack, "
            f"built in {time.perf_counter() - began:.2f} s; {options.repeat} repetitions\n"
        )

        pushers: dict[str, Callable[[Path], object]] = {
            "plain git push": lambda bare: plain_push(project, bare),
            "mlops_lite push (git)": lambda bare: sharing.push(
                str(bare), path=project, quiet=True, transport="git"
            ),
            "mlops_lite push (dulwich)": lambda bare: sharing.push(
                str(bare), path=project, quiet=True, transport="dulwich"
            ),
        }
        push_times: dict[str, list[float]] = {name: [] for name in pushers}
        for repetition in range(options.repeat):
            for name, push in pushers.items():  # interleaved, so drift hits all alike
                bare = new_bare(root, f"push-{repetition}-{len(push_times[name])}-{hash(name)}.git")
                push_times[name].append(timed(lambda push=push, bare=bare: push(bare)))

        # One populated remote (code branch + runs) that every pull reads from.
        remote = new_bare(root, "team.git")
        git(project, "push", "--quiet", str(remote), "main", REFSPEC)
        pullers: dict[str, Callable[[Path], object]] = {
            "plain git fetch": lambda clone: plain_fetch(clone, remote),
            "mlops_lite pull (git)": lambda clone: sharing.pull(
                str(remote), path=clone, quiet=True, transport="git"
            ),
            "mlops_lite pull (dulwich)": lambda clone: sharing.pull(
                str(remote), path=clone, quiet=True, transport="dulwich"
            ),
        }
        pull_times: dict[str, list[float]] = {name: [] for name in pullers}
        for repetition in range(options.repeat):
            for index, (name, pull) in enumerate(pullers.items()):
                clone = root / f"clone-{repetition}-{index}"
                git(root, "clone", "--quiet", "--no-local", str(remote), str(clone))
                pull_times[name].append(timed(lambda pull=pull, clone=clone: pull(clone)))

        # Incremental: one new run after the 1,000 are on the remote.
        incremental: dict[str, list[float]] = {name: [] for name in pushers}
        code_commit = git(project, "rev-parse", "HEAD")
        next_run = options.runs
        for _ in range(options.repeat):
            for name, push in pushers.items():
                fast_import_runs(project, next_run, 1, code_commit)
                next_run += 1
                incremental[name].append(timed(lambda push=push: push(remote)))

    _report("push of all runs to an empty bare remote", push_times)
    _report("pull of all runs into a fresh clone", pull_times)
    _report("incremental push of 1 new run (target < 1 s)", incremental)


def _report(title: str, times: dict[str, list[float]]) -> None:
    print(title)
    baseline = statistics.median(next(iter(times.values())))
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"  {name:<28} median {median * 1000:8.1f} ms   "
            f"(min {min(samples) * 1000:7.1f})   x{median / baseline:5.2f} of plain git"
        )
    print()


if __name__ == "__main__":
    main()
