"""What signing, trust checks and the snapshot rules cost, each beside a same-process baseline.

    python benchmarks/bench_trust.py [--repeat 9]

- recording a one-step run signed (an ssh ed25519 key, ``git commit-tree -S``)
  against the same run unsigned;
- the trust checks a pickled artifact's load adds: local provenance (this
  clone's runs) and a signature (``git verify-commit``, first time in a
  process: later verdicts are remembered), beside loading a msgpack artifact,
  which needs no check;
- pinning a dirty tree (200 tracked files, 3 edited, 2 new) to a snapshot,
  against the git commands the snapshot ran before it learnt what to leave
  out (status, a copied index, ``add --all``, ``write-tree``, ``commit-tree``).

Figures are medians over the repetitions; the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import IDENTITY, make_repo, median_time, scratch_dir


class Model:
    def __init__(self, weight: int) -> None:
        self.weight = weight


def bench_signing(repeat: int) -> None:
    from mlops_lite import Client, pipeline, step
    from mlops_lite.store import GitStore
    from mlops_lite.store.provenance import recorded_here
    from mlops_lite.store.signing import _verdicts, verify_signature

    key = Path(scratch_dir("mlops-bench-key-")) / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    signers = Path(".mlops-lite/allowed_signers")
    signers.parent.mkdir()
    signers.write_text(f"bench@example.com {key.with_suffix('.pub').read_text()}")
    subprocess.run(["git", "add", str(signers)], check=True)
    subprocess.run(["git", "commit", "-qm", "signers"], check=True)
    os.environ.update(
        GIT_CONFIG_COUNT="2",
        GIT_CONFIG_KEY_0="gpg.format",
        GIT_CONFIG_VALUE_0="ssh",
        GIT_CONFIG_KEY_1="user.signingKey",
        GIT_CONFIG_VALUE_1=str(key),
    )

    @step(enable_cache=False)
    def fit() -> Model:
        return Model(3)

    @step(enable_cache=False)
    def score() -> float:
        return 0.5

    @pipeline
    def modelling() -> None:
        fit()
        score()

    def run(signed: bool) -> str:
        os.environ["MLOPS_LITE_SIGN_RUNS"] = "1" if signed else "0"
        return str(modelling().sha)

    run(True)  # warm up both paths
    run(False)
    unsigned = median_time(lambda: run(False), repeat)
    signed = median_time(lambda: run(True), repeat)
    print(
        f"one 2-step run, signed      : {signed * 1000:7.1f} ms "
        f"(+{(signed - unsigned) * 1000:.1f} ms)   unsigned: {unsigned * 1000:.1f} ms"
    )

    sha = run(True)
    client = Client()
    steps = client.get_pipeline_run(sha).steps
    store = GitStore.open()

    def verify() -> None:
        _verdicts.clear()  # as the first load of a process
        assert verify_signature(store.root, sha, str(signers.resolve()))

    msgpack_load = median_time(lambda: steps["score"].output.load(), repeat)
    pickle_load = median_time(lambda: steps["fit"].output.load(), repeat)
    provenance = median_time(lambda: recorded_here(store, sha), repeat)
    verification = median_time(verify, repeat)
    print(
        f"load, pickle of your own run: {pickle_load * 1000:7.2f} ms "
        f"(provenance look-up {provenance * 1e6:.0f} us)   "
        f"msgpack load: {msgpack_load * 1000:.2f} ms"
    )
    print(
        f"signature check, per process: {verification * 1000:7.1f} ms (git verify-commit; "
        "unsigned runs and later loads skip it)"
    )
    client.close()
    store.close()


def bench_snapshot(repeat: int) -> None:
    from mlops_lite.store import GitStore
    from mlops_lite.store.codepin import pin_code

    root = make_repo("mlops-bench-snapshot-")
    for number in range(200):
        folder = Path(root, f"package{number % 10}")
        folder.mkdir(exist_ok=True)
        (folder / f"module{number}.py").write_text(f"VALUE = {number}\n" * 20)
    env = {**os.environ, **IDENTITY}
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "code"], cwd=root, check=True, env=env)
    for number in range(3):
        Path(root, f"package{number}", f"module{number}.py").write_text("VALUE = -1\n")
    Path(root, "new_helper.py").write_text("HELP = 1\n")
    Path(root, "package1", "new_module.py").write_text("NEW = 1\n")

    store = GitStore(root)
    identity = store.identity

    def before() -> str:
        git = ["git", "-c", f"core.hooksPath={os.devnull}"]
        subprocess.run(
            [*git, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all"],
            cwd=root, capture_output=True, check=True,
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as scratch:
            index = os.path.join(scratch, "index")
            shutil.copyfile(os.path.join(root, ".git", "index"), index)
            indexed = {**env, "GIT_INDEX_FILE": index}
            subprocess.run([*git, "add", "--all", "--", "."], cwd=root, env=indexed, check=True)
            tree = subprocess.run(
                [*git, "write-tree"], cwd=root, env=indexed, capture_output=True, text=True
            ).stdout.strip()
            date = subprocess.run(
                [*git, "show", "-s", "--format=@%ct %z", "HEAD"],
                cwd=root, capture_output=True, text=True,
            ).stdout.strip()  # fmt: skip
            return subprocess.run(
                [*git, "commit-tree", tree, "-p", "HEAD"], cwd=root, input="snapshot\n",
                env={**env, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
                capture_output=True, text=True,
            ).stdout.strip()  # fmt: skip

    def ours() -> str:
        return pin_code(root, os.path.join(root, ".git"), identity).commit

    before()
    ours()
    # Interleaved, so that the machine's drift weighs on both alike.
    old_times, new_times = [], []
    for _ in range(repeat):
        old_times.append(median_time(before, 1))
        new_times.append(median_time(ours, 1))
    old, new = statistics.median(old_times), statistics.median(new_times)
    print(
        f"snapshot of a dirty tree    : {new * 1000:7.1f} ms   "
        f"the same git commands without the rules: {old * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    os.environ.update(IDENTITY)
    os.chdir(make_repo())
    bench_signing(args.repeat)
    bench_snapshot(args.repeat)


if __name__ == "__main__":
    main()
