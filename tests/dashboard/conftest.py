"""One repository with every kind of run the dashboard shows, built once for these tests.

A parameter sweep (later runs reuse cached steps), a failed run, a run still
running (its step waits for a file), a teammate's run pulled from her clone
(with a pickled output whose unpickling would leave a marker file), a model with
two versions, named artifact versions, a stage history and a scoring run using
the production version's classifier, and text full of
HTML in parameters, metadata, tags, logs and outputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, wait_while_running

HOSTILE = "<script>alert(1)</script>"

PIPELINE = textwrap.dedent(
    '''
    import json, os, sys, time
    from pathlib import Path
    from typing import Annotated, Any

    import numpy as np
    import pandas as pd

    from mlops_lite import log_metadata, pipeline, step


    class Model:
        """Pickled (no materializer knows it); unpickling it leaves a marker file."""

        def __init__(self, weight):
            self.weight = weight

        def __reduce__(self):
            return (_unpickled, (self.weight,))

        def __repr__(self):
            return f"Model(weight={self.weight})"


    def _unpickled(weight):
        marker = os.environ.get("UNPICKLE_MARKER")
        if marker:
            Path(f"{marker}-{weight}").write_text("unpickled")
        return Model(weight)


    @step
    def load(rows: int = 40) -> Annotated[pd.DataFrame, "frame"]:
        print("loading <b>rows</b>")
        return pd.DataFrame({"x": np.arange(rows, dtype=float), "label": ["a", "b"] * (rows // 2)})


    @step
    def features(frame: pd.DataFrame) -> Annotated[np.ndarray, "matrix"]:
        return np.linspace(0.0, 1.0, 200).reshape(20, 10)


    @step
    def picture() -> Annotated[np.ndarray, "image"]:
        image = np.zeros((24, 24, 3), dtype=np.uint8)
        image[:, :12, 0] = 255
        image[12:, :, 2] = 200
        return image


    @step
    def train(
        matrix: np.ndarray, lr: float, fail: bool = False, note: str = ""
    ) -> Annotated[Any, "model"]:
        wait_for = os.environ.get("WAIT_FOR")
        if wait_for:
            print("waiting for", wait_for, flush=True)
            while not Path(wait_for).exists():
                time.sleep(0.05)
        print(f"training with lr={lr} {note}")
        log_metadata({"loss": round(1.0 / (1.0 + 10 * lr), 6), "comment": note})
        if fail:
            raise ValueError("the loss diverged")
        return Model(lr)


    @step
    def evaluate(model: Any, frame: pd.DataFrame) -> Annotated[str, "report"]:
        accuracy = round(min(0.99, 0.6 + model.weight), 6)
        log_metadata({"accuracy": accuracy})
        return f"accuracy {accuracy} <i>not italic</i>"


    @pipeline
    def sweep(lr: float = 0.1, fail: bool = False, note: str = "plain"):
        frame = load()
        model = train(features(frame), lr=lr, fail=fail, note=note)
        evaluate(model, frame)
        picture()


    if __name__ == "__main__":
        arguments = json.loads(sys.argv[1])
        try:
            run = sweep(**arguments)
            print("RUN", run.sha)
        except Exception as error:
            print("FAILED", error)
    '''
)


CHURN = textwrap.dedent(
    f"""
    import sys
    from typing import Annotated

    from mlops_lite import (
        ArtifactConfig, Model, get_pipeline_context, log_metadata, pipeline, step,
    )
    from mlops_lite.client import Client

    HOSTILE = {HOSTILE!r}


    @step
    def prepare(rows: int = 3) -> Annotated[list, ArtifactConfig(name="dataset", tags=[HOSTILE])]:
        return list(range(rows))


    @step
    def fit(
        dataset: list, weight: float
    ) -> Annotated[
        dict,
        ArtifactConfig(name="classifier", is_model_artifact=True, run_metadata={{"note": HOSTILE}}),
    ]:
        log_metadata(metadata={{"weight": weight, "note": HOSTILE}}, infer_model=True)
        return {{"weight": weight, "rows": len(dataset)}}


    @pipeline(model=Model(name="churn", description=HOSTILE, tags=["demo"]))
    def churn(weight: float = 1.0):
        fit(prepare(), weight=weight)


    @step
    def predict(classifier: dict, dataset: list) -> Annotated[list, "predictions"]:
        return [x * classifier["weight"] for x in dataset]


    @pipeline(model=Model(name="churn", version="production"))
    def scoring():
        # The production classifier, made by an earlier run: lineage crosses runs.
        classifier = get_pipeline_context().model.get_model_artifact("classifier")
        predict(classifier, prepare())


    if __name__ == "__main__":
        if sys.argv[1] == "promote":
            for version in sys.argv[2:]:
                Client().get_model_version("churn", version).set_stage("production", force=True)
        elif sys.argv[1] == "score":
            print("RUN", scoring().sha)
        else:
            print("RUN", churn(weight=float(sys.argv[1])).sha)
    """
)


@dataclass
class DashboardRepository:
    """The project, its runs by role, and what the tests need to reach them."""

    root: Path
    env: dict[str, str]
    sweep: list[str] = field(default_factory=list)
    failed: str = ""
    running: str = ""
    teammate: str = ""
    models: list[str] = field(default_factory=list)
    scoring: str = ""
    marker: Path = Path()
    release: Path = Path()
    process: subprocess.Popen[str] | None = None

    @property
    def teammate_unpickled(self) -> bool:
        """Whether anything unpickled the teammate's model (lr 0.4) in this process or another."""
        return Path(f"{self.marker}-0.4").exists()


def user_env(base: Path, name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "MLOPS_LITE_"))}
    email = f"{name}@example.com"
    home = base / f"home-{name}"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME=name,
        GIT_AUTHOR_EMAIL=email,
        GIT_COMMITTER_NAME=name,
        GIT_COMMITTER_EMAIL=email,
        PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    return env


def _run(cwd: Path, env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def _pipeline(cwd: Path, env: dict[str, str], **arguments: object) -> str:
    out = _run(cwd, env, sys.executable, "sweep.py", json.dumps(arguments))
    line = next(x for x in out.splitlines() if x.startswith(("RUN", "FAILED")))
    return line


def _newest(cwd: Path, env: dict[str, str], status: str | None = None) -> str:
    args = ["runs", "list", "--json", "-n", "1", *(["--status", status] if status else [])]
    listing = json.loads(_run(cwd, env, sys.executable, "-m", "mlops_lite", *args))
    return str(listing[0]["sha"]) if listing else ""


def build(base: Path) -> DashboardRepository:
    me = user_env(base, "tester")
    root = base / "project"
    root.mkdir()
    _run(root, me, "git", "init", "-q", "-b", "main")
    (root / "sweep.py").write_text(PIPELINE)
    (root / "churn.py").write_text(CHURN)
    _run(root, me, "git", "add", "sweep.py", "churn.py")
    _run(root, me, "git", "commit", "-qm", "sweep")
    repository = DashboardRepository(root, me, marker=base / "unpickled", release=base / "release")

    # A teammate clones the project, runs it, and we pull her run.
    alice = user_env(base, "alice")
    alice_root = base / "alice"
    _run(base, alice, "git", "clone", "-q", str(root), str(alice_root))
    _pipeline(alice_root, alice, lr=0.4, note="from alice")
    repository.teammate = _newest(alice_root, alice)

    me["UNPICKLE_MARKER"] = str(repository.marker)
    for lr in (0.1, 0.2, 0.3):
        note = HOSTILE if lr == 0.2 else "plain"
        assert _pipeline(root, me, lr=lr, note=note).startswith("RUN")
        repository.sweep.append(_newest(root, me))
    assert _pipeline(root, me, lr=0.9, fail=True).startswith("FAILED")
    repository.failed = _newest(root, me)
    _run(root, me, sys.executable, "-m", "mlops_lite", "pull", str(alice_root), "--quiet")
    # Two versions of the churn model; the second takes production from the first.
    for weight in ("1.0", "2.0"):
        _run(root, me, sys.executable, "churn.py", weight)
        repository.models.append(_newest(root, me))
    _run(root, me, sys.executable, "churn.py", "promote", "1", "2")
    _run(root, me, sys.executable, "churn.py", "score")
    repository.scoring = _newest(root, me)

    # A run left running: its train step waits for the release file.
    waiting = dict(me, WAIT_FOR=str(repository.release))
    repository.process = sweep = subprocess.Popen(
        [sys.executable, "sweep.py", json.dumps({"lr": 0.05})],
        cwd=root,
        env=waiting,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def running() -> bool:
        repository.running = _newest(root, me, "running")
        return bool(repository.running)

    wait_while_running(running, sweep, "the running run never appeared")
    assert not repository.teammate_unpickled
    return repository


@pytest.fixture(scope="session")
def dashboard_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardRepository]:
    repository = build(tmp_path_factory.mktemp("dashboard"))
    try:
        yield repository
    finally:
        repository.release.write_text("go")
        if repository.process is not None:
            try:
                repository.process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                repository.process.kill()
                repository.process.communicate()


@pytest.fixture(scope="session")
def dashboard_url(dashboard_repository: DashboardRepository) -> Iterator[str]:
    from mlops_lite.ui.server import DashboardServer

    server = DashboardServer(str(dashboard_repository.root), "127.0.0.1", 0)
    thread = server.start_in_background()
    try:
        yield server.url.rstrip("/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


LIVE = textwrap.dedent(
    """
    import time
    from pathlib import Path

    from mlops_lite import pipeline, step


    def wait_for(gate):
        while not Path(gate).exists():
            time.sleep(0.05)


    @step
    def first() -> int:
        print("first is done")
        return 1


    @step
    def slow(x: int) -> int:
        print("line one", flush=True)
        wait_for("gate-1")
        print("line two", flush=True)
        wait_for("gate-2")
        return x


    @pipeline
    def live():
        slow(first())


    if __name__ == "__main__":
        print("RUN", live().sha)
    """
)


@dataclass
class LiveRun:
    """A run of ``live`` in a subprocess; its step ``slow`` waits at ``gate-1``, then ``gate-2``."""

    root: Path
    process: subprocess.Popen[str]
    sha: str
    name: str

    def open_gate(self, number: int) -> None:
        (self.root / f"gate-{number}").write_text("go")

    def finish(self) -> None:
        self.open_gate(1)
        self.open_gate(2)
        try:
            self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


@contextlib.contextmanager
def live_run(project: Path) -> Iterator[LiveRun]:
    """Start ``live`` in ``project``; yield once its ``slow`` step has printed its first line."""
    from mlops_lite import Client

    (project / "live.py").write_text(LIVE)
    (project / ".gitignore").write_text("gate-*\n")
    subprocess.run(["git", "add", "live.py", ".gitignore"], cwd=project, check=True)
    subprocess.run(["git", "commit", "-qm", "live"], cwd=project, check=True)
    process = subprocess.Popen(
        [sys.executable, "live.py"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run: LiveRun | None = None
    try:

        def printed() -> bool:
            nonlocal run
            with Client(project) as client:
                found = client.find_runs(status="running", limit=1).runs
                step = found[0].steps.get("slow") if found else None
                if step is not None and "line one" in step.logs:
                    run = LiveRun(project, process, found[0].sha, found[0].name)
            return run is not None

        wait_while_running(printed, process, "the live run's step never printed")
        yield run
    finally:
        (run or LiveRun(project, process, "", "")).finish()
