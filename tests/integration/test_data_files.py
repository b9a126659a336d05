"""Data files are dependencies, automatically; cached steps carry their execution's metadata."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_lite import Client, diff
from mlops_lite.errors import DefinitionError
from mlops_lite.operations.rerun import data_differences
from tests.conftest import git, run_script

SCRIPT = textwrap.dedent(
    """
    import os
    import subprocess
    import sys
    from pathlib import Path
    from mlops_lite import log_metadata, pipeline, step

    @step
    def load() -> int:
        with open("data/raw.csv") as f:          # read: recorded
            values = [int(line) for line in f if line.strip()]
        Path("data/out.txt").write_text("written, not read\\n")  # written: not recorded
        Path(os.environ["OUTSIDE"]).read_text()  # outside the work tree: not recorded
        log_metadata({"rows": len(values)})
        return sum(values)

    @step(data=["data/blob.txt"])
    def shell() -> str:
        # A subprocess reads the file: only the declaration makes it a dependency.
        return subprocess.run(["cat", "data/blob.txt"], capture_output=True, text=True).stdout

    @pipeline
    def data_pipeline():
        load()
        shell()

    if __name__ == "__main__":
        orchestrator = sys.argv[1] if len(sys.argv) > 1 else "local"
        run = data_pipeline.with_options(orchestrator=orchestrator, workers=2)()
        steps = run.steps
        print(steps["load"].output.load(), steps["load"].cached, steps["shell"].cached)
    """
)


@pytest.fixture
def data_project(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    outside = tmp_path / "outside.txt"
    outside.write_text("elsewhere\n")
    monkeypatch.setenv("OUTSIDE", str(outside))
    (project / "data").mkdir()
    (project / "data" / "raw.csv").write_text("1\n2\n3\n")
    (project / "data" / "blob.txt").write_text("blob v1\n")
    (project / "pipe.py").write_text(SCRIPT)
    (project / ".gitignore").write_text("data/out.txt\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "pipeline and data")
    return project


def _run(root: Path, orchestrator: str = "local") -> str:
    return run_script(root, "pipe.py", orchestrator).stdout.strip()


@pytest.mark.parametrize("orchestrator", ["local", "pool"])
def test_a_changed_data_file_is_a_cache_miss_even_when_committed(
    data_project: Path, orchestrator: str
) -> None:
    assert _run(data_project, orchestrator) == "6 False False"
    assert _run(data_project, orchestrator) == "6 True True"

    (data_project / "data" / "raw.csv").write_text("4\n5\n6\n")
    git(data_project, "commit", "-qam", "new data")
    assert _run(data_project, orchestrator) == "15 False True"
    assert _run(data_project, orchestrator) == "15 True True"

    (data_project / "data" / "blob.txt").write_text("blob v2\n")  # declared, read by `cat`
    assert _run(data_project, orchestrator) == "15 True False"

    with Client(data_project) as client:
        load = client.get_pipeline("data_pipeline").last_run.steps["load"]
        assert list(load.data_files) == ["data/raw.csv"]  # no output, no outside, no code
        shell = client.get_pipeline("data_pipeline").last_run.steps["shell"]
        assert list(shell.data_files) == ["data/blob.txt"]


def test_files_read_on_dask_workers_are_recorded(data_project: Path) -> None:
    pytest.importorskip("distributed")
    assert _run(data_project, "dask") == "6 False False"
    with Client(data_project) as client:
        run = client.get_pipeline("data_pipeline").last_run
        assert run.orchestrator == "dask"
        assert list(run.steps["load"].data_files) == ["data/raw.csv"]


def test_runs_show_lists_data_files_and_diff_reports_them(data_project: Path) -> None:
    _run(data_project)
    (data_project / "data" / "raw.csv").write_text("4\n5\n6\n")
    _run(data_project)
    with Client(data_project) as client:
        first, second = reversed(client.get_pipeline("data_pipeline").runs)
        shown = subprocess.run(
            [sys.executable, "-m", "mlops_lite", "runs", "show", second.name],
            capture_output=True, text=True, check=True, cwd=data_project,
        ).stdout  # fmt: skip
        assert "data files read:" in shown
        assert "data/raw.csv" in shown and second.steps["load"].data_files["data/raw.csv"][:12] in (
            shown
        )
        changes = {change.key: change.same for change in diff(first, second).data_files}
        assert changes == {"load:data/raw.csv": False, "shell:data/blob.txt": True}
        assert data_differences(first, second) == [
            f"step load: data/raw.csv {first.steps['load'].data_files['data/raw.csv'][:12]} -> "
            f"{second.steps['load'].data_files['data/raw.csv'][:12]}"
        ]
    printed = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "diff", first.name, second.name, "--json"],
        capture_output=True, text=True, check=True, cwd=data_project,
    ).stdout  # fmt: skip
    assert json.loads(printed)["data_files"][0]["key"] == "load:data/raw.csv"


def test_a_declared_path_that_does_not_exist_names_the_step(project: Path) -> None:
    from mlops_lite import pipeline, step

    @step(data="data/missing.csv")
    def reads() -> int:
        return 1

    @pipeline
    def declared() -> None:
        reads()

    with pytest.raises(DefinitionError, match=r"step 'reads' declares data 'data/missing.csv'"):
        declared()


def test_a_cached_step_carries_the_metadata_of_the_execution_it_reuses(data_project: Path) -> None:
    _run(data_project)
    _run(data_project)
    _run(data_project)
    with Client(data_project) as client:
        third, second, first = client.get_pipeline("data_pipeline").runs
        executed, reused = first.steps["load"], third.steps["load"]
        assert executed.metadata == {"rows": 3} and not executed.metadata_inherited
        assert reused.cached and reused.metadata == {"rows": 3} and reused.metadata_inherited
        assert reused.cached_from is not None and reused.cached_from["run"] == first.name
        assert reused.to_dict()["metadata_inherited"] is True
        compared = {change.key: change for change in diff(first, third).metadata}
        assert compared["load.rows"].same and compared["load.rows"].b == 3
