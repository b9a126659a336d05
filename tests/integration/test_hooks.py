"""The user's git hooks never fire for mlops_lite's own git commands (issue 9 item 12).

Every hook git knows is installed, where git looks for it (``.git/hooks``, or
the folder ``core.hooksPath`` names), to append its name to a marker file.
Plain git fires them (checked first, so the test can fail); a run from a
dirty tree (the snapshot), a signed run and ``mlops-lite rerun`` fire none.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import git, run_script

HOOKS = (
    "applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "pre-merge-commit",
    "prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase", "post-checkout",
    "post-merge", "pre-push", "pre-receive", "update", "proc-receive", "post-receive",
    "post-update", "reference-transaction", "push-to-checkout", "pre-auto-gc", "post-rewrite",
    "sendemail-validate", "fsmonitor-watchman", "post-index-change",
)  # fmt: skip

SCRIPT = textwrap.dedent(
    """
    from mlops_lite import pipeline, step
    from helper import SCALE

    @step
    def scaled(n: int) -> int:
        return n * SCALE

    @pipeline
    def hooked(n: int = 2):
        scaled(n)

    if __name__ == "__main__":
        print("RUN", hooked().sha)
    """
)


def install_hooks(folder: Path, marker: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        hook = folder / name
        hook.write_text(f'#!/bin/sh\necho {name} >> "{marker}"\nexit 0\n')
        hook.chmod(0o755)


@pytest.mark.parametrize("where", [".git/hooks", "core.hooksPath"])
def test_snapshot_signed_runs_and_rerun_fire_no_user_hook(
    project: Path, tmp_path: Path, where: str
) -> None:
    marker = tmp_path / "fired.txt"
    (project / "pipeline.py").write_text(SCRIPT)
    (project / "helper.py").write_text("SCALE = 3\n")
    git(project, "add", "pipeline.py", "helper.py")
    git(project, "commit", "-qm", "pipeline")
    if where == "core.hooksPath":
        install_hooks(project / ".githooks", marker)
        git(project, "config", "core.hooksPath", ".githooks")
        (project / ".gitignore").write_text(".githooks/\n")
        git(project, "add", ".gitignore")
        git(project, "commit", "-qm", "ignore hooks")
    else:
        install_hooks(project / ".git" / "hooks", marker)

    # The hooks are live: plain git runs them.
    (project / "README.md").write_text("project, edited\n")
    git(project, "commit", "-qam", "edit")
    fired = marker.read_text().split()
    assert {"pre-commit", "commit-msg", "post-commit", "reference-transaction"} <= set(fired)
    marker.unlink()

    # A dirty tree: a tracked change and an untracked file, so the run snapshots.
    (project / "helper.py").write_text("SCALE = 4\n")
    (project / "extra.py").write_text("VALUE = 1\n")
    first = run_script(project, "pipeline.py")
    sha = next(line.split()[1] for line in first.stdout.splitlines() if line.startswith("RUN"))
    key = tmp_path / "signing_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    signed_env = {
        **os.environ,
        "MLOPS_LITE_SIGN_RUNS": "1",
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "gpg.format",
        "GIT_CONFIG_VALUE_0": "ssh",
        "GIT_CONFIG_KEY_1": "user.signingKey",
        "GIT_CONFIG_VALUE_1": str(key),
    }
    signed = subprocess.run(
        [sys.executable, "pipeline.py"], cwd=project, env=signed_env,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    signed_sha = signed.stdout.split("RUN ")[1].split()[0]
    assert "gpgsig" in git(project, "cat-file", "commit", signed_sha)
    rerun = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "rerun", sha],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert not marker.exists(), marker.read_text()
    assert git(project, "status", "--porcelain") == "M helper.py\n?? extra.py".strip()
