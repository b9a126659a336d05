"""The everyday commands load only the code they use.

`mlops-lite runs list` from a warm index and `mlops-lite push` with little to
send are mostly interpreter start-up; importing the pack writer, the
materializers or the registry for them would be most of their time. Checked
in a new interpreter, after a real run, on the command's own path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import git, run_script, uninstrumented_env

PIPELINE = """
from mlops_lite import pipeline, step

@step
def make() -> list[int]:
    return [1, 2, 3]

@step
def total(values: list[int]) -> int:
    return sum(values)

@pipeline
def tiny():
    total(make())

if __name__ == "__main__":
    tiny.with_options(quiet=True)()
"""

# What reading the index and moving refs never needs.
NOT_FOR_LISTING = (
    "dulwich",
    "mlops_lite.materializers",
    "mlops_lite.execution",
    "mlops_lite.store.artifacts",
    "mlops_lite.store.packs",
    "mlops_lite.store.keeps",
    "mlops_lite.store.codepin",
    "mlops_lite.store.maintenance",
    "mlops_lite.store.journal",
    "mlops_lite.store.trust",
    "mlops_lite.store.annotations",
    # Standard modules that take milliseconds to import, for code paths that seldom run
    # (a warning logged, a lock contended, a long git output spooled).
    "logging",
    "random",
    "tempfile",
)
NOT_FOR_PUSHING = (
    *NOT_FOR_LISTING,
    "mlops_lite.store.registry",
    "mlops_lite.operations.registry_sync",  # a pull's merge of registries
    "mlops_lite.store.blobstore",  # no artifact store is configured
    "mlops_lite.store.transport.dulwich_client",
)


def loaded_by(root: Path, *arguments: str) -> list[str]:
    """The modules a new interpreter has loaded once ``mlops-lite <arguments>`` returned."""
    code = (
        "import io, json, sys, contextlib\n"
        "from mlops_lite.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main({list(arguments)!r})\n"
        "assert code == 0, code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    # Not under coverage, which imports modules of its own.
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
        env=uninstrumented_env(),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    loaded: list[str] = json.loads(completed.stdout)
    return loaded


def heavy(loaded: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in loaded if any(m == n or m.startswith(n + ".") for n in names)]


def test_listing_runs_from_a_warm_index_loads_only_the_index_and_the_refs(project: Path) -> None:
    (project / "tiny.py").write_text(PIPELINE)
    run_script(project, "tiny.py")
    loaded_by(project, "runs", "list")  # builds the index
    loaded = loaded_by(project, "runs", "list")
    assert "mlops_lite.store.index" in loaded  # it did list the run
    assert heavy(loaded, NOT_FOR_LISTING) == []


def test_pushing_a_new_run_loads_only_the_refs_and_git(project: Path, tmp_path: Path) -> None:
    remote = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    (project / "tiny.py").write_text(PIPELINE)
    run_script(project, "tiny.py")
    loaded = loaded_by(project, "push", str(remote))
    assert "mlops_lite.store.transport.git_cli" in loaded  # it did push, with git
    assert git(remote, "for-each-ref", "refs/mlops/runs/")  # the run arrived
    assert heavy(loaded, NOT_FOR_PUSHING) == []
