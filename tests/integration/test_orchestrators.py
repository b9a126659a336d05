"""Orchestrators end to end.

Pipeline scripts run in subprocesses on ``local`` and ``pool``; records are read
back with the Client. Process behaviour (a worker dying, a timeout killing one)
is only real in a real process, so nothing here is mocked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_lite import Client
from tests.conftest import git, run_script

COMMON = textwrap.dedent(
    '''
    import json
    import os
    import sys
    import time
    from mlops_lite import log_metadata, pipeline, step
    from mlops_lite.errors import StepFailedError

    def report(run=None, error=None):
        """The driver's view, for the test: run name, or the error and its cause."""
        out = {"run": getattr(run, "name", None)}
        if error is not None:
            out.update(error=type(error).__name__, message=str(error), step=error.step_name,
                       cause=type(error.__cause__).__name__, cause_message=str(error.__cause__))
        print("REPORT " + json.dumps(out))

    def main(pipeline_object):
        options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
        try:
            report(pipeline_object.with_options(**options)())
        except StepFailedError as error:
            report(error=error)
    '''
)


def write(root: Path, name: str, body: str) -> str:
    (root / name).write_text(COMMON + textwrap.dedent(body))
    return name


def launch(root: Path, script: str, **options: object) -> dict[str, object]:
    completed = run_script(root, script, json.dumps(options))
    lines = [line for line in completed.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, completed.stdout + completed.stderr
    report: dict[str, object] = json.loads(lines[-1].removeprefix("REPORT "))
    report["stdout"], report["stderr"] = completed.stdout, completed.stderr
    return report


def last_run(root: Path, pipeline_name: str):  # type: ignore[no-untyped-def]
    with Client(root) as client:
        run = client.get_pipeline(pipeline_name).last_run
        run.record  # load before the client closes
        return run


def steps_of(root: Path, pipeline_name: str) -> dict[str, object]:
    with Client(root) as client:
        run = client.get_pipeline(pipeline_name).last_run
        return {name: view.record for name, view in run.steps.items()}


def output_ids(root: Path, pipeline_name: str) -> dict[str, str]:
    return {
        f"{name}/{output}": info.artifact_id
        for name, record in steps_of(root, pipeline_name).items()
        for output, info in record.outputs.items()  # type: ignore[attr-defined]
    }


# -- parallel speed ------------------------------------------------------------

CPU = """
@step
def burn(seed: int, n: int) -> int:
    total = seed
    for i in range(n):
        total = (total * 31 + i) % 1_000_003
    return total

@pipeline(enable_cache=False)
def cpu(n: int = 1000):
    for seed in range(4):
        burn(seed, n)

if __name__ == "__main__":
    main(cpu)
"""


BARRIER = """
@step
def meet(name: str, other: str, folder: str) -> str:
    # Each step announces itself, then waits for the other: run one after the
    # other they would wait forever (the timeout below), run at once they meet.
    open(os.path.join(folder, name), "w").close()
    for _ in range(6000):
        if os.path.exists(os.path.join(folder, other)):
            return name
        time.sleep(0.01)
    raise TimeoutError(f"{name} never met {other}: the steps did not run at the same time")

@pipeline(enable_cache=False)
def meeting(folder: str = "."):
    meet("a", "b", folder)
    meet("b", "a", folder)

if __name__ == "__main__":
    main(meeting)
"""


def test_pool_runs_independent_steps_at_the_same_time(project: Path) -> None:
    script = write(project, "meeting.py", BARRIER)
    folder = project / "rendezvous"
    folder.mkdir()
    source = (project / script).read_text().replace('"."', repr(str(folder)))
    (project / script).write_text(source)
    launch(project, script, orchestrator="pool", workers=2)
    run = last_run(project, "meeting")
    assert run.status == "completed", run.error
    assert [step.output.load() for step in run.steps.values()] == ["a", "b"]


def test_pool_and_local_record_the_same_artifacts(project: Path) -> None:
    script = write(project, "cpu.py", CPU)
    ids: dict[str, dict[str, str]] = {}
    for orchestrator in ("local", "pool"):
        launch(project, script, orchestrator=orchestrator, workers=2)
        run = last_run(project, "cpu")
        assert run.status == "completed" and run.orchestrator == orchestrator
        ids[orchestrator] = output_ids(project, "cpu")
    assert ids["pool"] == ids["local"] and len(ids["local"]) == 4


# -- failure isolation --------------------------------------------------------

CRASH = """
@step
def crash() -> int:
    print("about to die", flush=True)
    os._exit(3)

@step
def after_crash(x: int) -> int:
    return x

@step
def survivor(path: str) -> str:
    time.sleep(1.0)
    with open(path, "a") as f:
        f.write("ran\\n")
    return "alive"

@pipeline
def crashing(path: str = "survivor-ran.txt"):
    after_crash(crash())
    survivor(path)

if __name__ == "__main__":
    main(crashing)
"""


def test_worker_exit_fails_only_its_step_and_sibling_finishes(project: Path) -> None:
    script = write(project, "crash.py", CRASH)
    report = launch(project, script, orchestrator="pool", workers=2)
    assert report["error"] == "StepFailedError" and report["step"] == "crash"
    assert report["cause"] == "WorkerDiedError"
    assert "'crash'" in str(report["cause_message"]) and "exited with code 3" in str(
        report["cause_message"]
    )
    assert "about to die" in str(report["stdout"])  # the worker's output reached the console
    run = last_run(project, "crashing")
    assert run.status == "failed"
    records = steps_of(project, "crashing")
    assert records["crash"].status == "failed"  # type: ignore[attr-defined]
    assert "WorkerDiedError" in records["crash"].error  # type: ignore[attr-defined]
    assert records["after_crash"].status == "skipped"  # type: ignore[attr-defined]
    assert records["survivor"].status == "completed"  # type: ignore[attr-defined]

    # The finished sibling is cached for the next run; the crash is tried again.
    launch(project, script, orchestrator="pool", workers=2)
    records = steps_of(project, "crashing")
    assert records["survivor"].status == "cached"  # type: ignore[attr-defined]
    assert (project / "survivor-ran.txt").read_text() == "ran\n"
    # Workers never touch the repository: only our own two files are new.
    assert git(project, "status", "--porcelain").splitlines() == [
        "?? crash.py",
        "?? survivor-ran.txt",
    ]


def test_fail_fast_cancels_running_siblings(project: Path) -> None:
    # Uncancelled, the sibling would sleep past the script's 120 s limit: the test fails.
    script = write(project, "crash.py", CRASH.replace("time.sleep(1.0)", "time.sleep(600)"))
    report = launch(project, script, orchestrator="pool", workers=2, fail_fast=True)
    assert report["step"] == "crash"
    records = steps_of(project, "crashing")
    assert records["survivor"].status == "skipped"  # type: ignore[attr-defined]
    assert "fail_fast" in records["survivor"].error  # type: ignore[attr-defined]
    assert last_run(project, "crashing").record.extra["fail_fast"] is True


FAILING = """
class Custom(Exception):
    pass

@step
def bad() -> int:
    print("trying")
    raise Custom("no luck")

@pipeline(enable_cache=False)
def failing():
    bad()

if __name__ == "__main__":
    main(failing)
"""


@pytest.mark.parametrize("orchestrator", ["local", "pool"])
def test_step_exception_reaches_the_caller_as_cause(project: Path, orchestrator: str) -> None:
    script = write(project, "failing.py", FAILING)
    report = launch(project, script, orchestrator=orchestrator)
    assert report["error"] == "StepFailedError" and report["step"] == "bad"
    assert report["cause"] == "Custom" and report["cause_message"] == "no luck"
    record = steps_of(project, "failing")["bad"]
    assert record.status == "failed" and "Custom: no luck" in record.error  # type: ignore[attr-defined]


# -- timeouts and retries -------------------------------------------------------

SLEEPY = """
@step(timeout=1.0)
def sleepy() -> int:
    time.sleep(600)  # unstopped, past the script's 120 s limit: the test fails
    return 1

@step
def quick() -> int:
    return 2

@pipeline(enable_cache=False)
def sleeping():
    sleepy()
    quick()

if __name__ == "__main__":
    main(sleeping)
"""


@pytest.mark.parametrize("orchestrator", ["pool", "local"])
def test_timeout_stops_a_sleeping_step(project: Path, orchestrator: str) -> None:
    script = write(project, "sleepy.py", SLEEPY)
    report = launch(project, script, orchestrator=orchestrator)
    assert report["step"] == "sleepy" and report["cause"] == "StepTimeoutError"
    records = steps_of(project, "sleeping")
    assert records["sleepy"].status == "failed"  # type: ignore[attr-defined]
    assert records["sleepy"].settings["timeout"] == 1.0  # type: ignore[attr-defined]
    assert records["quick"].status == "completed"  # type: ignore[attr-defined]


FLAKY = """
@step(retries=3, retry_delay=0.1)
def flaky(path: str) -> str:
    count = int(open(path).read()) + 1 if os.path.exists(path) else 1
    open(path, "w").write(str(count))
    print(f"attempt {count}")
    log_metadata({"seen": count})
    if count < 3:
        raise RuntimeError(f"flaky failure {count}")
    return f"done after {count}"

@pipeline(enable_cache=False)
def retrying(path: str = "counter.txt"):
    flaky(path)

if __name__ == "__main__":
    main(retrying)
"""


@pytest.mark.parametrize("orchestrator", ["pool", "local"])
def test_retries_rerun_a_flaky_step_with_backoff(project: Path, orchestrator: str) -> None:
    script = write(project, "flaky.py", FLAKY)
    report = launch(project, script, orchestrator=orchestrator)
    assert report["run"] is not None, report
    assert (project / "counter.txt").read_text() == "3"
    with Client(project) as client:
        view = client.get_pipeline("retrying").last_run.get_step("flaky")
        assert view.status == "completed"
        assert view.output.load() == "done after 3"
        assert view.metadata == {"seen": 3}
        assert view.attempts == 3
        assert view.record.settings["retries"] == 3 and view.record.settings["retry_delay"] == 0.1
        logs = view.logs
    assert logs.index("attempt 1") < logs.index("attempt 1 of 4 failed") < logs.index("attempt 3")
    assert "flaky failure 2; retrying" in logs


def test_retries_also_cover_a_dead_worker(project: Path) -> None:
    script = write(
        project,
        "dies.py",
        """
@step(retries=1, retry_delay=0)
def dies_once(path: str) -> int:
    if not os.path.exists(path):
        open(path, "w").close()
        os._exit(9)
    return 7

@pipeline(enable_cache=False)
def dying(path: str = "died.txt"):
    dies_once(path)

if __name__ == "__main__":
    main(dying)
""",
    )
    report = launch(project, script, orchestrator="pool")
    assert report["run"] is not None, report
    assert steps_of(project, "dying")["dies_once"].attempts == 2  # type: ignore[attr-defined]


# -- fan-out --------------------------------------------------------------------

SWEEP = """
@step
def load() -> list:
    return [1.0, 2.0, 3.0]

@step
def evaluate(data: list, lr: float) -> float:
    print(f"evaluating lr={lr} in {os.getpid()}")
    log_metadata({"lr": lr})
    return sum(data) * lr

@step
def best(scores: list) -> float:
    return max(scores)

@pipeline
def sweep(grid: list = [0.1, 0.2, 0.3]):
    scores = evaluate.map(data=load(), lr=grid)
    best(scores)

if __name__ == "__main__":
    main(sweep)
"""


def test_fan_out_elements_are_cached_individually(project: Path) -> None:
    script = write(project, "sweep.py", SWEEP)
    launch(project, script, orchestrator="pool")
    records = steps_of(project, "sweep")
    assert sorted(records) == ["best", "evaluate_0", "evaluate_1", "evaluate_2", "load"]
    assert all(r.status == "completed" for r in records.values())  # type: ignore[attr-defined]
    assert records["evaluate_2"].parameters == {"lr": 0.3}  # type: ignore[attr-defined]
    assert records["evaluate_2"].metadata == {"lr": 0.3}  # type: ignore[attr-defined]
    assert sorted(records["best"].inputs) == ["scores[0]", "scores[1]", "scores[2]"]  # type: ignore[attr-defined]
    assert records["best"].upstream == ["evaluate_0", "evaluate_1", "evaluate_2"]  # type: ignore[attr-defined]
    with Client(project) as client:
        assert client.get_pipeline("sweep").last_run.get_step(
            "best"
        ).output.load() == pytest.approx(1.8)

    # Change one element: one invocation runs again, and the gather step after it.
    (project / script).write_text(
        (project / script).read_text().replace("[0.1, 0.2, 0.3]", "[0.1, 0.2, 0.5]")
    )
    launch(project, script, orchestrator="pool")
    status = {name: r.status for name, r in steps_of(project, "sweep").items()}  # type: ignore[attr-defined]
    assert status == {
        "load": "cached",
        "evaluate_0": "cached",
        "evaluate_1": "cached",
        "evaluate_2": "completed",
        "best": "completed",
    }
    with Client(project) as client:
        assert client.get_pipeline("sweep").last_run.get_step(
            "best"
        ).output.load() == pytest.approx(3.0)


# -- logs, metadata and records are the same wherever a step runs -------------------

LOGGING = """
import logging
from typing import Annotated

@step
def chatty(n: int) -> tuple[Annotated[list, "values"], Annotated[str, "label"]]:
    print("to stdout", n)
    print("to stderr", file=sys.stderr)
    logging.getLogger("demo").info("info record %d", n)
    logging.getLogger("demo").debug("debug record is not kept by default")
    log_metadata({"n": n, "nested": {"a": [1, 2]}})
    return list(range(n)), f"label-{n}"

@step
def use(values: list, label: str) -> str:
    return label + str(sum(values))

@pipeline(enable_cache=False)
def talking():
    values, label = chatty(4)
    use(values, label)

if __name__ == "__main__":
    main(talking)
"""


def test_logs_metadata_and_artifacts_match_between_local_and_pool(project: Path) -> None:
    script = write(project, "talking.py", LOGGING)
    seen: dict[str, tuple[str, dict[str, object], dict[str, str]]] = {}
    for orchestrator in ("local", "pool"):
        report = launch(project, script, orchestrator=orchestrator)
        assert "to stdout 4" in str(report["stdout"]) and "to stderr" in str(report["stderr"])
        with Client(project) as client:
            view = client.get_pipeline("talking").last_run.get_step("chatty")
            # Log lines carry a timestamp: compare without it.
            logs = "\n".join(
                line.split(" ", 2)[-1] if line[:2] == "20" else line
                for line in view.logs.splitlines()
            )
            seen[orchestrator] = (logs, view.metadata, output_ids(project, "talking"))
    assert seen["pool"] == seen["local"]
    logs = seen["pool"][0]
    assert "to stdout 4" in logs and "to stderr" in logs and "INFO demo: info record 4" in logs
    assert "debug record" not in logs


# -- choosing the orchestrator ---------------------------------------------------

CHOICE = """
@step
def square(x: int) -> int:
    return x * x

@pipeline(enable_cache=False)
def choosing():
    square(3)

if __name__ == "__main__":
    main(choosing)
"""


def _cli(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    completed = subprocess.run(
        [sys.executable, "-m", "mlops_lite.cli", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return completed


def test_switching_stacks_changes_nothing_in_the_recorded_outputs(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = write(project, "choose.py", CHOICE)
    launch(project, script)
    default_run = last_run(project, "choosing")
    assert default_run.record.orchestrator == "local"
    assert default_run.record.extra["stack"] == "default"
    baseline = output_ids(project, "choosing")

    _cli(
        project,
        "stack",
        "register",
        "fast",
        "--orchestrator",
        "pool",
        "--workers",
        "2",
        "--activate",
    )
    listing = _cli(project, "stack", "list").stdout
    assert "* fast" in listing and "workers=2" in listing
    launch(project, script)
    run = last_run(project, "choosing")
    assert (run.record.orchestrator, run.record.extra["stack"]) == ("pool", "fast")
    assert run.record.extra["orchestrator_settings"] == {"workers": 2}
    assert output_ids(project, "choosing") == baseline

    # The environment overrides the project: first the stack, then the orchestrator.
    monkeypatch.setenv("MLOPS_LITE_STACK", "default")
    launch(project, script)
    assert last_run(project, "choosing").record.orchestrator == "local"
    monkeypatch.setenv("MLOPS_LITE_ORCHESTRATOR", "pool")
    launch(project, script, orchestrator="local")
    run = last_run(project, "choosing")
    assert (
        run.record.orchestrator == "pool"
        and run.record.extra["orchestrator_source"] == "environment"
    )
    assert output_ids(project, "choosing") == baseline


def test_unknown_orchestrator_is_a_config_error_before_anything_is_recorded(project: Path) -> None:
    script = write(project, "choose.py", CHOICE)
    completed = run_script(project, script, json.dumps({"orchestrator": "spark"}), check=False)
    assert completed.returncode != 0
    assert "ConfigError" in completed.stderr and "unknown orchestrator 'spark'" in completed.stderr
    assert git(project, "for-each-ref", "refs/mlops/") == ""


# -- resources ------------------------------------------------------------------

PACKED = """
@step(settings={"resources": {"cpu_count": 2}})
def wide(folder: str) -> bool:
    return overlapped("wide", "narrow", folder)

@step
def narrow(folder: str) -> bool:
    return overlapped("narrow", "wide", folder)

def overlapped(name, other, folder):
    # Announce, then watch for the other for two seconds: run at once (on two
    # workers), they meet; run one after the other, neither sees the other.
    mine = os.path.join(folder, name)
    open(mine, "w").close()
    try:
        for _ in range(200):
            if os.path.exists(os.path.join(folder, other)):
                return True
            time.sleep(0.01)
        return False
    finally:
        os.remove(mine)

@step(settings={"resources": {"cpu_count": 3}})
def too_wide() -> int:
    return 3

@step(settings={"resources": {"gpu_count": 1}})
def on_gpu() -> int:
    return 1

@pipeline(enable_cache=False)
def packing(folder: str = ".", impossible: str = ""):
    wide(folder)
    narrow(folder)
    if impossible == "cpu":
        too_wide()
    if impossible == "gpu":
        on_gpu()

if __name__ == "__main__":
    main(packing)
"""


def test_pool_gives_a_step_the_cpus_it_asks_for(project: Path) -> None:
    script = write(project, "packing.py", PACKED)
    folder = project / "markers"
    folder.mkdir()
    source = (
        (project / script)
        .read_text()
        .replace('folder: str = "."', f"folder: str = {str(folder)!r}")
    )
    (project / script).write_text(source)
    launch(project, script, orchestrator="pool", workers=2)
    run = last_run(project, "packing")
    assert run.status == "completed", run.error
    # Two workers, but `wide` holds both CPUs: `narrow` never runs beside it.
    assert [run.steps[name].output.load() for name in ("wide", "narrow")] == [False, False]


@pytest.mark.parametrize(
    ("impossible", "options", "message"),
    [
        ("cpu", {"workers": 2}, "asks for 3 CPUs, but the pool has 2 CPUs (workers = 2)"),
        ("gpu", {"workers": 2}, "asks for 1 GPU, but the pool has 0 GPUs (gpus = 0)"),
    ],
)
def test_pool_fails_a_step_asking_for_more_than_it_has_at_once(
    project: Path, impossible: str, options: dict[str, int], message: str
) -> None:
    script = write(
        project,
        "packing.py",
        PACKED.replace('impossible: str = ""', f"impossible: str = {impossible!r}"),
    )
    report = launch(project, script, orchestrator="pool", **options)
    assert report["cause"] == "UnsatisfiableResourcesError", report
    assert message in str(report["cause_message"])
    run = last_run(project, "packing")
    assert run.status == "failed"
    assert run.steps["wide"].status == "completed"  # the rest of the run went on


def test_pool_with_a_declared_gpu_runs_a_gpu_step(project: Path) -> None:
    script = write(
        project,
        "packing.py",
        PACKED.replace('impossible: str = ""', "impossible: str = 'gpu'"),
    )
    report = launch(project, script, orchestrator="pool", workers=2, gpus=1)
    assert report.get("error") is None, report
    assert last_run(project, "packing").status == "completed"


def test_stack_register_takes_gpus_and_strict_env(project: Path) -> None:
    _cli(project, "stack", "register", "gpu", "-o", "pool", "--workers", "2", "--gpus", "1")
    _cli(
        project,
        "stack",
        "register",
        "cluster",
        "-o",
        "dask",
        "--address",
        "tcp://h:8786",
        "--strict-env",
    )
    text = (project / "pyproject.toml").read_text()
    assert "[tool.mlops-lite.stacks.gpu]" in text and "gpus = 1" in text
    assert "[tool.mlops-lite.stacks.cluster]" in text and "strict_env = true" in text
