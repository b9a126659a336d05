"""Watching a running run: its steps from the journal, `logs -f`, one console line per step."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mlops_lite import Client
from tests.conftest import run_script, wait_while_running

SCRIPT = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path
    from mlops_lite import pipeline, step

    @step
    def prepare() -> int:
        return 1

    @step
    def train(x: int) -> int:
        gate = os.environ.get("GATE")
        print("epoch 1", flush=True)
        if gate:
            Path(gate + ".started").write_text("")
            deadline = time.monotonic() + 60
            while not Path(gate).exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        print("epoch 2", flush=True)
        return x + 1

    @step
    def report(x: int) -> int:
        return x

    @pipeline
    def watched():
        report(train(prepare()))

    if __name__ == "__main__":
        watched()
    """
)


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_lite", *args],
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_running_run_shows_its_steps_and_a_running_step_can_be_followed(
    project: Path, tmp_path: Path
) -> None:
    (project / "watched.py").write_text(SCRIPT)
    gate = tmp_path / "gate"
    driver = subprocess.Popen(
        [sys.executable, "watched.py"], cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "GATE": str(gate)},
    )  # fmt: skip
    try:
        started = Path(str(gate) + ".started")
        wait_while_running(started.exists, driver, "the step never started")
        with Client(project) as client:
            (run,) = client.list_pipeline_runs(status="running")
            assert {name: step.status for name, step in run.steps.items()} == {
                "prepare": "completed",
                "train": "running",
            }
            assert run.steps["prepare"].output.load() == 1  # read from the journal
            assert run.steps["train"].logs == "epoch 1\n"

        shown = _cli(project, "runs", "show", run.name)
        assert shown.returncode == 0, shown.stderr
        lines = {line.split()[0]: line.split()[1] for line in shown.stdout.splitlines()[-2:]}
        assert lines == {"prepare": "completed", "train": "running"}

        follower = subprocess.Popen(
            [sys.executable, "-m", "mlops_lite", "logs", "-f", run.name, "train"],
            cwd=project, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert follower.stdout is not None
        assert follower.stdout.readline() == "epoch 1\n"  # printed while the step runs
        gate.write_text("go")
        rest, errors = follower.communicate(timeout=60)
        assert follower.returncode == 0, errors
        assert rest == "epoch 2\n"
        _, console = driver.communicate(timeout=60)
    finally:
        gate.write_text("go")
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, console

    # One line per step on the console (stderr), in order.
    step_lines = [line for line in console.splitlines() if line.startswith(("Step ", "Run "))]
    assert [" ".join(line.split()[:3]) for line in step_lines] == [
        f"Run watched/{run.name} started.",
        "Step prepare started.",
        "Step prepare completed",
        "Step train started.",
        "Step train completed",
        "Step report started.",
        "Step report completed",
        f"Run watched/{run.name} completed",
    ]
    assert "runs show" in step_lines[-1]

    again = run_script(project, "watched.py")
    assert f"Step prepare cached: reusing its outputs from run {run.name}." in again.stderr
    quiet = subprocess.run(
        [sys.executable, "watched.py"], cwd=project, capture_output=True, text=True, timeout=60,
        env={**os.environ, "MLOPS_LITE_QUIET": "1"}, check=True,
    )  # fmt: skip
    assert quiet.stderr == ""


def test_following_a_finished_step_prints_its_logs_and_an_unknown_step_is_named(
    project: Path,
) -> None:
    (project / "watched.py").write_text(SCRIPT)
    run_script(project, "watched.py")
    with Client(project) as client:
        name = client.get_pipeline("watched").last_run.name
    followed = _cli(project, "logs", "-f", name, "train")
    assert followed.returncode == 0 and followed.stdout == "epoch 1\nepoch 2\n"
    missing = _cli(project, "logs", "-f", name, "trian")
    assert missing.returncode == 1 and "did you mean 'train'?" in missing.stderr
    quiet = _cli(project, "run", "watched.py:watched", "--quiet")
    assert quiet.returncode == 0 and "Step " not in quiet.stderr
