"""A year of a team's runs: everyday git, recording, listing, sharing and gc at 0 / 10k / 100k runs.

    python benchmarks/bench_scale.py [--runs 0,10000,100000] [--only SECTION,...] [--repeat 5]

Each repository is a copy of a synthetic one (``synthetic.py``: 10 steps per run,
4 pipelines, parameters and metrics, one pack, packed refs) laid out as this
version of mlops_lite keeps it (``retention.tidy``: old runs folded into
archive refs; a version without archives keeps one ref per run). Every figure
is printed beside its baseline from the same run:

- ``everyday``: ``git status``, ``git log -1 --decorate``, ``git log --all -20``,
  ``git push`` and ``git fetch`` of a branch, against the same project with no runs;
  refs on disk and the size of a branch push's ref advertisement;
- ``run``: a new 2-step run in-process, and as a fresh process, against an empty repository;
- ``listing``: ``runs list`` after a fresh clone (index built from nothing), warm,
  and ``--limit 0 --json`` (time, peak memory), against ``mlops-lite --version``;
- ``client``: ``Client().get_pipeline(p).runs`` with parameters and metadata read;
- ``sharing``: ``mlops-lite push`` of everything, ``pull`` into a fresh clone against
  ``git clone --mirror``, push/pull with nothing new, an incremental push of 1 run;
- ``gc``: ``git gc`` against the same repository whose runs hang from a single ref
  (``--loose-refs``: with every run ref a loose file, as runs write them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import IDENTITY, scratch_dir
from synthetic import synthetic_repository

SECTIONS = ("everyday", "run", "listing", "client", "sharing", "gc")
PIPELINE = """\
from mlops_lite import pipeline, step

@step
def make(n: int) -> list[int]:
    return list(range(n))

@step
def total(values: list[int]) -> int:
    return sum(values)

@pipeline(enable_cache=False)
def tiny(n: int = 10):
    total(make(n))

if __name__ == "__main__":
    tiny.with_options(quiet=True)()
"""


def git(cwd: str, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit(root: str, message: str, *paths: str) -> None:
    if paths:
        git(root, "add", *paths)
    env = {**os.environ, **IDENTITY}
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", message], cwd=root, check=True, env=env
    )


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def median_of(action: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed(action) for _ in range(repeat))


def cli(*args: str) -> list[str]:
    """The command as users type it: the ``mlops-lite`` script beside this interpreter.

    ``python -m mlops_lite`` (where no script is installed) adds runpy's imports, ~10 ms.
    """
    script = Path(sys.executable).with_name("mlops-lite")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "mlops_lite", *args]


# Started by a small interpreter, not by this process: a child forked from a process
# of 500 MB (this one, once it has built a fixture) reports that as its own peak.
_MEASURE = """\
import os, subprocess, sys, time
began = time.perf_counter()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(process.pid, 0)
elapsed = time.perf_counter() - began
sys.stderr.write(process.stderr.read().decode(errors="replace"))
print(os.waitstatus_to_exitcode(status), elapsed, usage.ru_maxrss * 1024)
"""


def run_child(command: list[str], cwd: str) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one child process."""
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], cwd=cwd, capture_output=True, text=True
    )
    code, elapsed, peak = measured.stdout.split()
    if measured.returncode != 0 or code != "0":
        raise RuntimeError(f"{command} failed: {measured.stderr}")
    return float(elapsed), int(peak)


def child_median(command: list[str], cwd: str, repeat: int) -> float:
    return statistics.median(run_child(command, cwd)[0] for _ in range(repeat))


def project_with(runs: int, prefix: str) -> str:
    """A project with ``runs`` synthetic runs, laid out as this version keeps them."""
    if runs:
        return synthetic_repository(runs, prefix, layout=True)
    root = str(Path(scratch_dir(prefix)) / "project")
    subprocess.run(["git", "init", "-q", "-b", "main", root], check=True)
    Path(root, "train.py").write_text("print('train')\n")
    commit(root, "code", "train.py")
    return root


def ref_files(root: str) -> tuple[int, int]:
    """How many loose ref files there are, and the bytes all refs take on disk."""
    count = 0
    size = 0
    for directory, _, files in os.walk(os.path.join(root, ".git", "refs")):
        for name in files:
            count += 1
            size += os.stat(os.path.join(directory, name)).st_blocks * 512
    packed = os.path.join(root, ".git", "packed-refs")
    return count, size + (os.path.getsize(packed) if os.path.exists(packed) else 0)


def report(title: str, figures: dict[int, float], unit: str = "ms") -> None:
    baseline = figures.get(0)
    cells = []
    for runs, value in figures.items():
        shown = f"{value * 1000:8.1f} ms" if unit == "ms" else f"{value:10.0f}{unit}"
        ratio = f" (x{value / baseline:5.2f})" if baseline and runs else ""
        cells.append(f"{runs:>7} runs {shown}{ratio}")
    print(f"  {title:<30}" + "  ".join(cells))


# everyday git ---------------------------------------------------------------


class Everyday:
    """A project with runs, a shared remote holding them, and a teammate's clone."""

    def __init__(self, runs: int) -> None:
        self.root = project_with(runs, f"mlops-bench-everyday-{runs}-")
        scratch = os.path.dirname(self.root)
        self.remote = os.path.join(scratch, "team.git")
        git(self.root, "clone", "-q", "--no-local", "--mirror", self.root, self.remote)
        git(self.root, "remote", "add", "origin", self.remote)
        git(self.root, "fetch", "-q", "origin")
        git(self.root, "branch", "-q", "--set-upstream-to=origin/main", "main")
        self.teammate = os.path.join(scratch, "teammate")
        git(scratch, "clone", "-q", "--no-local", self.remote, self.teammate)
        self.fetch_times: list[float] = []

    def status(self) -> None:
        git(self.root, "status")

    def log_decorate(self) -> None:
        git(self.root, "log", "-1", "--decorate")

    def log_all(self) -> None:
        git(self.root, "log", "--all", "-20", "--oneline")

    def push_branch(self) -> None:
        commit(self.root, "work")
        git(self.root, "push", "-q", "origin", "main")

    def fetch_branch(self) -> None:
        """A teammate pushes a commit; the fetch that brings it is what is timed."""
        git(self.teammate, "pull", "-q", "--rebase", "origin", "main")
        commit(self.teammate, "theirs")
        git(self.teammate, "push", "-q", "origin", "main")
        self.fetch_times.append(timed(lambda: git(self.root, "fetch", "-q", "origin")))


def bench_everyday(sizes: list[int], repeat: int) -> None:
    print("everyday git in the project (each beside the same project with 0 runs)")
    # Every size's command in turn, `repeat` times: a burst of load on a shared
    # machine then slows all sizes alike instead of one size's whole series.
    projects = {runs: Everyday(runs) for runs in sorted({0, *sizes})}
    figures: dict[str, dict[int, float]] = {}
    for name, action in (
        ("git status", Everyday.status),
        ("git log -1 --decorate", Everyday.log_decorate),
        ("git log --all -20", Everyday.log_all),
        ("git push of a branch", Everyday.push_branch),
    ):
        times: dict[int, list[float]] = {runs: [] for runs in projects}
        for project in projects.values():
            action(project)  # warm
        for _ in range(repeat):
            for runs, project in projects.items():
                times[runs].append(timed(lambda p=project, a=action: a(p)))
        figures[name] = {runs: statistics.median(values) for runs, values in times.items()}
    for _ in range(repeat + 1):
        for project in projects.values():
            project.fetch_branch()
    figures["git fetch of a branch"] = {
        runs: statistics.median(project.fetch_times[1:]) for runs, project in projects.items()
    }
    for runs, project in projects.items():
        advertised = subprocess.run(
            ["git", "ls-remote", project.remote], capture_output=True, check=True
        ).stdout
        figures.setdefault("ref advertisement", {})[runs] = len(advertised)
        count, size = ref_files(project.root)
        figures.setdefault("loose ref files", {})[runs] = count
        figures.setdefault("refs on disk", {})[runs] = size
    for name, values in figures.items():
        unit = {"ref advertisement": " B", "refs on disk": " B", "loose ref files": ""}
        report(name, values, unit.get(name, "ms"))
    print()


# a new run ------------------------------------------------------------------


def bench_run(sizes: list[int], repeat: int) -> None:
    print("a new 2-step run (each beside an empty repository)")
    roots = {runs: project_with(runs, f"mlops-bench-run-{runs}-") for runs in sorted({0, *sizes})}
    for root in roots.values():
        Path(root, "tiny.py").write_text(PIPELINE)
        commit(root, "tiny", "tiny.py")
        run_child([sys.executable, "tiny.py"], root)  # builds the index once
    # In-process: one interpreter records into each repository in turn.
    sys.path.insert(0, roots[0])
    import importlib

    tiny = importlib.import_module("tiny").tiny.with_options(quiet=True)
    in_process: dict[int, list[float]] = {runs: [] for runs in roots}
    fresh: dict[int, list[float]] = {runs: [] for runs in roots}
    here = os.getcwd()
    try:
        for _ in range(repeat):
            for runs, root in roots.items():
                os.chdir(root)
                in_process[runs].append(timed(tiny))
        for _ in range(repeat):
            for runs, root in roots.items():
                fresh[runs].append(run_child([sys.executable, "tiny.py"], root)[0])
    finally:
        os.chdir(here)
    report("in-process", {runs: statistics.median(times) for runs, times in in_process.items()})
    report("as a fresh process", {runs: statistics.median(times) for runs, times in fresh.items()})
    print()


# listing ----------------------------------------------------------------------


def drop_index(root: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(root, ".git", "mlops-lite", "index.sqlite3" + suffix).unlink(missing_ok=True)


def bench_listing(sizes: list[int], repeat: int) -> None:
    print("runs list (beside `mlops-lite --version`, a process that imports and exits)")
    for runs in sizes:
        root = project_with(runs, f"mlops-bench-listing-{runs}-")
        cold = []
        for _ in range(max(1, repeat // 2)):
            drop_index(root)
            cold.append(run_child(cli("runs", "list"), root)[0])
        # Alternating, so that the ratio compares processes that met the same load.
        version, warm = [], []
        for _ in range(repeat):
            version.append(run_child(cli("--version"), root)[0])
            warm.append(run_child(cli("runs", "list"), root)[0])
        ratio = statistics.median(w / v for w, v in zip(warm, version, strict=True))
        elapsed, peak = run_child(cli("runs", "list", "--limit", "0", "--json"), root)
        print(
            f"  {runs:>7} runs: fresh clone {statistics.median(cold) * 1000:7.0f} ms   warm "
            f"{statistics.median(warm) * 1000:6.0f} ms (x{ratio:4.2f} of --version: "
            f"{statistics.median(version) * 1000:.0f} ms)"
            f"   --limit 0 --json {elapsed:6.2f} s, peak {peak / 1e6:6.0f} MB"
        )
    print()


# the client -------------------------------------------------------------------


def read_pipeline(root: str, *, values: bool) -> int:
    from mlops_lite import Client

    with Client(root) as client:
        listed = client.get_pipeline("train").runs
        if values:
            for run in listed:
                _ = run.parameters, run.metadata
        return len(listed)


def bench_client(sizes: list[int], repeat: int) -> None:
    print("Client().get_pipeline('train').runs, reading .parameters and .metadata of each")
    for runs in sizes:
        if not runs:
            continue
        root = project_with(runs, f"mlops-bench-client-{runs}-")
        count = read_pipeline(root, values=True)  # the index, built once
        elapsed = median_of(lambda root=root: read_pipeline(root, values=True), repeat)
        baseline = median_of(lambda root=root: read_pipeline(root, values=False), repeat)
        print(
            f"  {runs:>7} runs ({count} of the pipeline): {elapsed:6.3f} s "
            f"(listing them without reading: {baseline:.3f} s)"
        )
    print()


# sharing ----------------------------------------------------------------------


def mirror_clone(scratch: str, remote: str) -> None:
    shutil.rmtree(os.path.join(scratch, "mirror.git"), ignore_errors=True)
    git(scratch, "clone", "-q", "--no-local", "--mirror", remote, "mirror.git")


def bench_sharing(sizes: list[int], repeat: int) -> None:
    print("mlops-lite push / pull (beside plain git on the same repositories)")
    for runs in sizes:
        if not runs:
            continue
        root = project_with(runs, f"mlops-bench-sharing-{runs}-")
        scratch = os.path.dirname(root)
        remote = os.path.join(scratch, "team.git")
        git(scratch, "init", "-q", "--bare", "-b", "main", remote)
        git(root, "push", "-q", remote, "main")
        push_all, _ = run_child(cli("push", remote, "-q"), root)
        mirror = median_of(lambda s=scratch, r=remote: mirror_clone(s, r), max(1, repeat // 2))
        pulls = []
        for number in range(max(1, repeat // 2)):
            clone = os.path.join(scratch, f"clone-{number}")
            git(scratch, "clone", "-q", "--no-local", remote, clone)
            pulls.append(run_child(cli("pull", "-q"), clone)[0])
        clone = os.path.join(scratch, "clone-0")
        push_nothing = child_median(cli("push", remote, "-q"), root, repeat)
        pull_nothing = child_median(cli("pull", "-q"), clone, repeat)
        Path(root, "tiny.py").write_text(PIPELINE)
        commit(root, "tiny", "tiny.py")
        git(root, "push", "-q", remote, "main")
        incremental, versions = [], []
        for _ in range(repeat):
            run_child([sys.executable, "tiny.py"], root)
            incremental.append(run_child(cli("push", remote, "-q"), root)[0])
            versions.append(run_child(cli("--version"), root)[0])  # beside it, same load
        version = statistics.median(versions)
        pull_all = statistics.median(pulls)
        print(f"  {runs:>7} runs: push of all {push_all:6.2f} s")
        print(
            f"  {runs:>7} runs: pull into a fresh clone {pull_all:6.2f} s "
            f"(x{pull_all / mirror:4.2f} of git clone --mirror: {mirror:.2f} s)"
        )
        print(
            f"  {runs:>7} runs: nothing new: push {push_nothing:5.2f} s, "
            f"pull {pull_nothing:5.2f} s; push of 1 new run {statistics.median(incremental):5.2f}"
            f" s (mlops-lite --version: {version:.2f} s)"
        )
    print()


# gc -----------------------------------------------------------------------------


def hang_from_one_ref(root: str) -> None:
    """The baseline: the same objects, every run reachable from one ref and no run refs."""
    from mlops_lite.store import GitStore
    from mlops_lite.store.objects import Identity, tree
    from mlops_lite.store.objects import commit as make_commit

    listed = git(root, "for-each-ref", "--format=%(objectname) %(refname)", "refs/mlops/")
    shas = sorted({line.split()[0] for line in listed.splitlines()})
    identity = Identity("bench", "bench@example.com")
    empty = tree({})
    objects = [empty]
    batches = []
    for start in range(0, len(shas), 1000):
        batch = make_commit(
            tree_id=empty.id, parents=shas[start : start + 1000], author=identity,
            timestamp=1, tz_offset_minutes=0, message="batch\n",
        )  # fmt: skip
        objects.append(batch)
        batches.append(batch.id)
    top = make_commit(
        tree_id=empty.id, parents=batches, author=identity, timestamp=1, tz_offset_minutes=0,
        message="all runs\n",
    )  # fmt: skip
    objects.append(top)
    with GitStore(root) as store:
        store.write_objects(objects).release()
    commands = "".join(f"delete {line.split()[1]}\n" for line in listed.splitlines())
    commands += f"create refs/heads/all-runs {top.id}\n"
    subprocess.run(["git", "update-ref", "--stdin"], cwd=root, input=commands.encode(), check=True)


def unpack_refs(root: str) -> None:
    """Every ref under refs/mlops/ as a loose file, as recording runs leaves them."""
    listed = git(root, "for-each-ref", "--format=%(objectname) %(refname)", "refs/mlops/")
    for line in listed.splitlines():
        sha, ref = line.split()
        path = Path(root, ".git", ref)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sha + "\n")


def gc_pair(runs: int, loose: bool) -> tuple[float, float, str]:
    """``git gc`` of a project with runs, and of the same one hanging from one ref."""
    root = project_with(runs, f"mlops-bench-gc-{runs}-")
    plain = str(Path(scratch_dir(f"mlops-bench-gc-plain-{runs}-")) / "project")
    subprocess.run(["cp", "-a", root, plain], check=True)
    hang_from_one_ref(plain)
    if loose:
        unpack_refs(root)
    baseline = timed(lambda: git(plain, "gc", "-q"))
    ours = timed(lambda: git(root, "gc", "-q"))
    counts = git(root, "count-objects", "-v")
    shutil.rmtree(os.path.dirname(root), ignore_errors=True)
    shutil.rmtree(os.path.dirname(plain), ignore_errors=True)
    return ours, baseline, counts.split("count: ")[1].split()[0]


def bench_gc(sizes: list[int], repeat: int, loose: bool = False) -> None:
    print("git gc (beside the same repository with every run hanging from one ref)")
    for runs in sizes:
        if not runs:
            continue
        pairs = [gc_pair(runs, loose) for _ in range(max(1, repeat // 2))]
        ours = statistics.median(pair[0] for pair in pairs)
        baseline = statistics.median(pair[1] for pair in pairs)
        print(
            f"  {runs:>7} runs: git gc {ours:6.2f} s (x{ours / baseline:4.2f} of {baseline:.2f} s);"
            f" loose objects after: {pairs[-1][2]}"
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="0,10000,100000")
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--loose-refs", action="store_true", help="gc: run refs as loose files")
    args = parser.parse_args()
    sizes = [int(n) for n in args.runs.split(",")]
    os.environ.update(IDENTITY)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ["HOME"] = scratch_dir("mlops-bench-home-")
    # An installed package has its bytecode compiled: a child process that compiles
    # every module again (PYTHONDONTWRITEBYTECODE in some sandboxes) adds 0.2-1 s to
    # each figure that starts `mlops-lite`, and measures the compiler.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "mlops_lite"), quiet=1)
    for name in args.only.split(","):
        if name == "gc":
            bench_gc(sizes, args.repeat, args.loose_refs)
        else:
            globals()[f"bench_{name}"](sizes, args.repeat)


if __name__ == "__main__":
    main()
