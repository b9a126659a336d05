"""Ctrl-C and SIGTERM keep what happened: the interrupted step, its partial logs, finished steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_lite import Client
from tests.conftest import run_script, wait_while_running

SCRIPT = textwrap.dedent(
    """
    import os
    import sys
    import time
    from pathlib import Path
    from mlops_lite import pipeline, step

    @step
    def prepare() -> int:
        print("prepared")
        return 1

    @step
    def train(x: int) -> int:
        if os.environ.get("BLOCK"):
            print("halfway through training", flush=True)
            Path(os.environ["BLOCK"]).write_text("started")
            time.sleep(60)
        return x + 1

    @step
    def report(x: int) -> int:
        return x

    @pipeline
    def long_run():
        report(train(prepare()))

    if __name__ == "__main__":
        run = long_run()
        print(run.status, run.steps["prepare"].cached)
    """
)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_records_the_step_as_cancelled_with_its_partial_logs(
    project: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    (project / "long.py").write_text(SCRIPT)
    marker = tmp_path / "started"
    process = subprocess.Popen(
        [sys.executable, "long.py"], cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "BLOCK": str(marker)},
        # A test run started in the background inherits SIGINT ignored; Ctrl-C is not.
        preexec_fn=_default_sigint,
    )  # fmt: skip
    wait_while_running(marker.exists, process, "the step never started")
    process.send_signal(signum)
    process.communicate(timeout=60)
    assert process.returncode == -signum  # the process still ends by the signal it got

    with Client(project) as client:
        run = client.get_pipeline("long_run").last_run
        assert run.status == "cancelled"
        name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT (Ctrl-C)"
        assert run.error == f"run cancelled by {name}"
        assert run.steps["prepare"].status == "completed"
        train = run.steps["train"]
        assert train.status == "cancelled"
        assert "halfway through training" in train.logs
        assert "KeyboardInterrupt" in (train.error or "") or "RunTerminated" in (train.error or "")
        assert "report" not in run.steps  # never started
        listed = client.list_pipeline_runs(status="cancelled")
        assert [r.name for r in listed] == [run.name]

    # Next time, what finished is reused and the rest runs.
    assert run_script(project, "long.py").stdout.split() == ["completed", "True"]


def test_an_interrupted_pool_run_records_the_running_step_as_cancelled(
    project: Path, tmp_path: Path
) -> None:
    (project / "long.py").write_text(SCRIPT)
    marker = tmp_path / "started"
    process = subprocess.Popen(
        [sys.executable, "long.py"], cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "BLOCK": str(marker), "MLOPS_LITE_ORCHESTRATOR": "pool"},
    )  # fmt: skip
    wait_while_running(marker.exists, process, "the step never started")
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGTERM
    with Client(project) as client:
        run = client.get_pipeline("long_run").last_run
        assert run.status == "cancelled" and run.orchestrator == "pool"
        assert run.steps["train"].status == "cancelled"
        assert run.steps["prepare"].status == "completed"
