"""Installing mlops-lite into another project works as the README says: a wheel, a fresh venv."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, git

PIPELINE = textwrap.dedent(
    """
    from typing import Annotated
    from mlops_lite import pipeline, step

    @step
    def double(x: int) -> Annotated[int, "doubled"]:
        return 2 * x

    @pipeline
    def installed(x: int = 21):
        double(x=x)

    if __name__ == "__main__":
        installed()
    """
)


@pytest.mark.slow
def test_a_built_wheel_installs_into_a_fresh_venv_and_its_printed_hints_work(
    tmp_path: Path,
) -> None:
    # Outside this checkout: nothing may come from it but the wheel.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if Path(sys.executable).parent != Path(p)
    )
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "-q"]
    subprocess.run(
        [*build, "-w", str(wheels)], check=True, capture_output=True, env=env, timeout=300
    )
    (wheel,) = wheels.glob("mlops_lite-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{wheel}[yaml]"],
        check=True, capture_output=True, env=env, timeout=300,
    )  # fmt: skip

    project = tmp_path / "elsewhere"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    (project / "train.py").write_text(PIPELINE)
    git(project, "add", "train.py")
    git(project, "commit", "-q", "-m", "a project of its own")
    # The venv is not activated: its console script is not on PATH.
    completed = subprocess.run(
        [str(python), "train.py"], cwd=project, capture_output=True, text=True, env=env,
        timeout=120, check=True,
    )  # fmt: skip
    located = subprocess.run(
        [str(python), "-c", "import mlops_lite, yaml; print(mlops_lite.__file__)"],
        cwd=project, capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    assert Path(located.strip()).is_relative_to(venv)  # the wheel's copy, not this checkout

    hint = completed.stderr.strip().splitlines()[-1]
    command = hint.split("see `")[1].rstrip("`.")
    assert command.startswith(f"{python} -m mlops_lite runs show ")
    shown = subprocess.run(
        shlex.split(command), cwd=project, capture_output=True, text=True, env=env, check=True
    )
    assert "double" in shown.stdout and "completed" in shown.stdout
