"""The dask orchestrator on a real Dask cluster.

A scheduler and workers are started with the ``dask`` CLI as separate processes
on 127.0.0.1, as an operator would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_lite import Client
from mlops_lite.execution import stacks
from tests.conftest import git, run_script
from tests.integration.remotes import wait_for_port

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


@contextlib.contextmanager
def running_cluster(
    where: Path,
    worker_groups: list[list[str]] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``dask scheduler`` and ``dask worker`` processes started in ``where``, as an operator would.

    Each entry of ``worker_groups`` is one ``dask worker`` command's extra arguments
    (default: one command with two single-thread worker processes). Only
    ``mlops_lite`` is on their import path, never the project.
    """
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0", **(env or {})}
    logs = where / "dask-logs"
    logs.mkdir(parents=True, exist_ok=True)
    scheduler = subprocess.Popen(
        _dask_command("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"),
        stdout=subprocess.DEVNULL,
        stderr=(logs / "scheduler.log").open("wb"),
        env=env,
        cwd=where,
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        wait_for_port(port, scheduler, "the dask scheduler")
        for number, extra in enumerate(worker_groups or [["--nworkers", "2"]]):
            command = ["worker", address, "--nthreads", "1", "--host", "127.0.0.1"]
            workers.append(
                subprocess.Popen(
                    _dask_command(*command, "--no-dashboard", *extra),
                    stdout=subprocess.DEVNULL,
                    stderr=(logs / f"worker-{number}.log").open("wb"),
                    env=env,
                    cwd=where,
                )
            )
        yield address
    finally:
        for worker in workers:
            _stop(worker)
        _stop(scheduler)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and ``dask worker`` (two worker processes) on 127.0.0.1."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with running_cluster(elsewhere) as address:
        yield address


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


# -- the run's code travels with it ----------------------------------------------------

# Steps travel by value (cloudpickle), but what they import from the project is
# imported by name on the worker: the helper, the materializer's module.
PROJECT_HELPERS = 'def version():\n    return "v1"\n'

PROJECT_STEPS = textwrap.dedent(
    """
    import os
    from mlops_lite import log_metadata, step
    from helpers import version
    from materializers import Box

    @step
    def make(n: int) -> Box:
        log_metadata({"pid": os.getpid()})
        return Box([version()] * n)

    @step
    def describe(box: Box) -> str:
        return f"{version()}:{len(box.items)}:" + ",".join(box.items)
    """
)

# A project package the user's materializer lives in: the ModuleNotFoundError.
PROJECT_MATERIALIZERS = textwrap.dedent(
    """
    import json
    from mlops_lite import Materializer

    class Box:
        def __init__(self, items):
            self.items = list(items)

    class BoxMaterializer(Materializer):
        name = "project.box"
        version = 1
        value_types = (Box,)

        def save(self, value):
            return json.dumps(value.items).encode()

        def load(self, payload):
            return Box(json.loads(payload))
    """
)

PROJECT_RUN = textwrap.dedent(
    """
    import os
    import sys
    from mlops_lite import pipeline, register_materializer
    from materializers import BoxMaterializer
    from steps import describe, make

    register_materializer(BoxMaterializer())

    @pipeline(enable_cache=False)
    def shipped(n: int = 3):
        describe(make(n))

    if __name__ == "__main__":
        run = shipped()
        print("DRIVER", os.getpid(), run.name, run.code_commit)
    """
)


def _shipped(root: Path) -> tuple[dict[str, str], str, set[object], dict[str, object]]:
    with Client(root) as client:
        run = client.get_pipeline("shipped").last_run
        ids = {
            f"{name}/{output}": artifact.id
            for name, view in run.steps.items()
            for output, artifact in view.outputs.items()
        }
        return (
            ids,
            run.get_step("describe").output.load(),
            {run.get_step("make").metadata["pid"]},
            {"orchestrator": run.record.orchestrator, "code": run.code_commit},
        )


def test_workers_import_the_runs_pinned_commit_never_their_own_copy(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "materializers").mkdir()
    (project / "materializers" / "__init__.py").write_text(PROJECT_MATERIALIZERS)
    (project / "helpers.py").write_text(PROJECT_HELPERS)
    (project / "steps.py").write_text(PROJECT_STEPS)
    (project / "run.py").write_text(PROJECT_RUN)
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "v1")
    first_commit = git(project, "rev-parse", "HEAD")
    run_script(project, "run.py")
    local_ids, local_value, _, local = _shipped(project)
    assert local["orchestrator"] == "local" and local_value == "v1:3:v1,v1,v1"

    # The workers run in another directory and have a stale copy of the project on
    # their import path: they must import neither it nor anything but the run's pin.
    elsewhere = tmp_path / "elsewhere"
    stale = elsewhere / "stale-checkout"
    (stale / "materializers").mkdir(parents=True)
    (stale / "materializers" / "__init__.py").write_text(
        PROJECT_MATERIALIZERS.replace("json.dumps(value.items)", "json.dumps(value.items[::-1])")
    )
    (stale / "helpers.py").write_text(PROJECT_HELPERS.replace("v1", "stale"))
    library = os.environ["PYTHONPATH"]
    with running_cluster(elsewhere, env={"PYTHONPATH": f"{library}{os.pathsep}{stale}"}) as address:
        stacks.register_stack(str(project), stacks.Stack("cluster", "dask", {"address": address}))
        git(project, "add", "pyproject.toml")
        git(project, "commit", "-q", "-m", "a cluster stack")
        monkeypatch.setenv("MLOPS_LITE_STACK", "cluster")

        completed = run_script(project, "run.py")
        driver_pid = int(completed.stdout.split("DRIVER ")[1].split()[0])
        dask_ids, dask_value, pids, remote = _shipped(project)
        assert remote["orchestrator"] == "dask" and driver_pid not in pids
        assert dask_value == local_value
        assert dask_ids == local_ids  # the same artifacts, bit for bit

        # A second commit on the same cluster: the same worker processes already
        # imported `steps` at the first commit, and must now import the new one.
        (project / "helpers.py").write_text(PROJECT_HELPERS.replace("v1", "v2"))
        git(project, "commit", "-q", "-am", "v2")
        run_script(project, "run.py")
        _, second_value, _, second = _shipped(project)
        assert second_value == "v2:3:v2,v2,v2"
        assert second["code"] == git(project, "rev-parse", "HEAD") != first_commit

        # A dirty work tree: the run is pinned to its snapshot, and workers get that.
        (project / "helpers.py").write_text(PROJECT_HELPERS.replace("v1", "dirty"))
        run_script(project, "run.py")
        _, dirty_value, _, dirty = _shipped(project)
        assert dirty_value == "dirty:3:dirty,dirty,dirty"
        assert git(project, "rev-parse", f"{dirty['code']}^") == git(project, "rev-parse", "HEAD")
    assert git(project, "status", "--porcelain") == "M helpers.py"


def _wait_for_workers(address: str, count: int) -> None:
    """Until ``count`` workers joined: placement is only tested with a choice to make."""
    waiting = (
        "import sys; from distributed import Client; c = Client(sys.argv[1], timeout=120); "
        "c.wait_for_workers(int(sys.argv[2]), timeout=240); c.close()"
    )
    # Hang guards only: a worker starting on a busy 2-core machine imports for a while.
    subprocess.run([sys.executable, "-c", waiting, address, str(count)], check=True, timeout=300)


def _fake_package(folder: Path, name: str, version: str) -> Path:
    """A folder that, first on a worker's path, makes it report ``name`` at ``version``."""
    (folder / f"{name}-{version}.dist-info").mkdir(parents=True)
    return folder


def test_a_worker_with_other_package_versions_is_reported_and_refused_with_strict_env(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "sweep.py").write_text(SCRIPT)
    elsewhere = tmp_path / "elsewhere"
    fake = _fake_package(elsewhere / "old-packages", "msgpack", "0.0.1")
    library = os.environ["PYTHONPATH"]
    with running_cluster(elsewhere, env={"PYTHONPATH": f"{fake}{os.pathsep}{library}"}) as address:
        stacks.register_stack(str(project), stacks.Stack("cluster", "dask", {"address": address}))
        monkeypatch.setenv("MLOPS_LITE_STACK", "cluster")
        warned = run_script(project, "sweep.py")
        assert "the Dask workers' environment differs from this one" in warned.stderr
        assert "package msgpack:" in warned.stderr and "0.0.1 on worker tcp://" in warned.stderr

        monkeypatch.setenv("MLOPS_LITE_STRICT_ENV", "1")
        refused = run_script(project, "sweep.py", check=False)
    assert refused.returncode != 0
    assert "EnvironmentMismatchError" in refused.stderr, refused.stderr
    assert "strict_env is on" in refused.stderr
    with Client(project) as client:
        assert len(client.list_pipeline_runs()) == 1  # the refused run recorded nothing


# -- resources ---------------------------------------------------------------------

RESOURCES = textwrap.dedent(
    """
    import os
    import sys
    from mlops_lite import log_metadata, pipeline, step
    from mlops_lite.errors import StepFailedError

    @step(settings={"resources": {"gpu_count": 1, "memory": "1GiB"}})
    def on_gpu(i: int) -> int:
        log_metadata({"gpu_worker": os.environ.get("WORKER_HAS_GPU") == "yes"})
        return i

    @step
    def anywhere(i: int) -> int:
        return i

    @step(settings={"resources": {"gpu_count": 2}})
    def on_two_gpus() -> int:
        return 2

    @pipeline(enable_cache=False)
    def placed(two: bool = False):
        on_gpu.map(i=[0, 1, 2, 3])
        anywhere.map(i=[0, 1, 2, 3])
        if two:
            on_two_gpus()

    if __name__ == "__main__":
        try:
            placed(two=len(sys.argv) > 1)
        except StepFailedError as error:
            print("FAILED", error.step_name, type(error.__cause__).__name__, error.__cause__)
    """
)


def test_a_gpu_step_lands_only_on_a_worker_that_declares_a_gpu(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "placed.py").write_text(RESOURCES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # One worker declares a GPU; it alone has WORKER_HAS_GPU in its environment.
    gpu_worker = [["--resources", "GPU=1"]]
    with running_cluster(elsewhere, gpu_worker, env={"WORKER_HAS_GPU": "yes"}) as address:
        plain = subprocess.Popen(
            _dask_command("worker", address, "--nthreads", "1", "--no-dashboard"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if k != "WORKER_HAS_GPU"},
            cwd=elsewhere,
        )
        try:
            stacks.register_stack(
                str(project), stacks.Stack("cluster", "dask", {"address": address})
            )
            monkeypatch.setenv("MLOPS_LITE_STACK", "cluster")
            _wait_for_workers(address, 2)
            run_script(project, "placed.py")
            with Client(project) as client:
                run = client.get_pipeline("placed").last_run
                assert run.status == "completed"
                assert [run.get_step(f"on_gpu_{i}").metadata["gpu_worker"] for i in range(4)] == [
                    True
                ] * 4
            # Two GPUs: no worker has them. The step fails at once, naming what there is.
            completed = run_script(project, "placed.py", "two")
        finally:
            _stop(plain)
    assert "FAILED on_two_gpus UnsatisfiableResourcesError" in completed.stdout, completed.stderr
    assert "asks for 2 GPUs" in completed.stdout and "GPU=1" in completed.stdout
