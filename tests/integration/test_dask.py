"""The dask orchestrator on a real Dask cluster.

A scheduler and workers are started with the ``dask`` CLI as separate processes
on 127.0.0.1, as an operator would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_lite import Client
from mlops_lite.execution import stacks
from tests.conftest import run_script

pytest.importorskip("distributed")

SCRIPT = textwrap.dedent(
    """
    import logging
    import os
    import sys
    from mlops_lite import log_metadata, pipeline, step

    @step
    def load(n: int) -> list:
        print("loading", n)
        return [float(i) for i in range(n)]

    @step
    def evaluate(data: list, lr: float) -> dict:
        logging.getLogger("sweep").info("lr %s", lr)
        log_metadata({"pid": os.getpid()})
        return {"lr": lr, "score": sum(data) * lr}

    @step
    def best(results: list) -> float:
        return max(r["score"] for r in results)

    @pipeline(enable_cache=False)
    def distributed_sweep(n: int = 5):
        results = evaluate.map(data=load(n), lr=[0.1, 0.2, 0.3, 0.4])
        best(results)

    if __name__ == "__main__":
        run = distributed_sweep()
        print("DRIVER", os.getpid(), run.name)
    """
)


def _dask_command(*args: str) -> list[str]:
    beside = Path(sys.executable).parent / "dask"
    found = str(beside) if beside.exists() else shutil.which("dask")
    return [found, *args] if found else [sys.executable, "-m", "dask", *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and ``dask worker`` (two worker processes) on 127.0.0.1."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    scheduler = subprocess.Popen(
        _dask_command("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"),
        stdout=subprocess.DEVNULL,
        stderr=(logs / "scheduler.log").open("wb"),
        env=env,
        cwd=tmp_path,
    )
    worker = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or scheduler.poll() is not None:
                    raise RuntimeError((logs / "scheduler.log").read_text()) from None
                time.sleep(0.1)
        worker = subprocess.Popen(
            _dask_command(
                "worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "2",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
            ),
            stdout=subprocess.DEVNULL,
            stderr=(logs / "worker.log").open("wb"),
            env=env,
            cwd=tmp_path,
        )
        yield address
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)


def _outputs(root: Path) -> tuple[dict[str, str], dict[str, object]]:
    with Client(root) as client:
        run = client.get_pipeline("distributed_sweep").last_run
        ids = {
            f"{name}/{output}": artifact.id
            for name, view in run.steps.items()
            for output, artifact in view.outputs.items()
        }
        return ids, {
            "orchestrator": run.record.orchestrator,
            "stack": run.record.extra["stack"],
            "settings": run.record.extra["orchestrator_settings"],
            "pids": {
                view.metadata["pid"]
                for name, view in run.steps.items()
                if name.startswith("evaluate")
            },
            "logs": run.get_step("evaluate_2").logs,
            "best": run.get_step("best").output.load(),
        }


def test_pipeline_on_a_dask_cluster_records_the_same_artifacts_as_local(
    project: Path, dask_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "sweep.py").write_text(SCRIPT)
    run_script(project, "sweep.py")
    local_ids, local = _outputs(project)
    assert local["orchestrator"] == "local"

    stacks.register_stack(str(project), stacks.Stack("cluster", "dask", {"address": dask_cluster}))
    monkeypatch.setenv("MLOPS_LITE_STACK", "cluster")
    completed = run_script(project, "sweep.py")
    driver_pid = int(completed.stdout.split("DRIVER ")[1].split()[0])
    dask_ids, remote = _outputs(project)

    assert (remote["orchestrator"], remote["stack"]) == ("dask", "cluster")
    assert remote["settings"]["address"] == dask_cluster  # type: ignore[index]
    assert dask_ids == local_ids
    assert remote["best"] == local["best"] == pytest.approx(4.0)
    pids = remote["pids"]
    assert driver_pid not in pids  # type: ignore[operator]
    assert "INFO sweep: lr 0.3" in str(remote["logs"])  # logs captured on the Dask worker


def test_unreachable_scheduler_is_a_config_error_naming_it(project: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    (project / "sweep.py").write_text(
        SCRIPT.replace(
            "run = distributed_sweep()",
            "run = distributed_sweep.with_options(orchestrator='dask', "
            f"address={address!r}, connect_timeout=2)()",
        )
    )
    completed = run_script(project, "sweep.py", check=False)
    assert completed.returncode != 0
    assert "ConfigError" in completed.stderr, completed.stderr
    assert f"could not reach the scheduler at {address!r}" in completed.stderr
    with Client(project) as client:
        assert client.list_pipeline_runs() == []  # nothing recorded


def test_without_an_address_the_run_starts_its_own_local_cluster(project: Path) -> None:
    (project / "sweep.py").write_text(
        SCRIPT.replace(
            "run = distributed_sweep()",
            "run = distributed_sweep.with_options(orchestrator='dask', workers=2)()",
        )
    )
    completed = run_script(project, "sweep.py")
    driver_pid = int(completed.stdout.split("DRIVER ")[1].split()[0])
    _, remote = _outputs(project)
    assert remote["orchestrator"] == "dask"
    assert remote["settings"]["address"] == "local-cluster"  # type: ignore[index]
    assert remote["best"] == pytest.approx(4.0)
    assert driver_pid not in remote["pids"]  # type: ignore[operator]
