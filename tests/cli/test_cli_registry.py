"""``mlops-lite artifact list|versions`` and ``mlops-lite model list|versions|stage``."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import pytest

from tests.cli.test_cli_runs import cli
from tests.conftest import run_script

SCRIPT = textwrap.dedent(
    """
    import sys
    from typing import Annotated
    from mlops_lite import ArtifactConfig, Model, pipeline, step

    @step(enable_cache=False)
    def train(weight: float) -> Annotated[dict, ArtifactConfig(name="classifier", tags=["t"])]:
        return {"weight": weight}

    @pipeline(model=Model(name="churn"))
    def training(weight: float = 1.0):
        train(weight=weight)

    if __name__ == "__main__":
        training(weight=float(sys.argv[1]))
    """
)


def trained(project: Path) -> Path:
    (project / "train.py").write_text(SCRIPT)
    run_script(project, "train.py", "1")
    run_script(project, "train.py", "2")
    return project


def test_empty_listings_say_how_to_make_entries(project: Path) -> None:
    assert "Annotated[T, 'name']" in cli(project, "artifact", "list").stdout
    assert "model=Model(name=...)" in cli(project, "model", "list").stdout
    assert json.loads(cli(project, "model", "list", "--json").stdout) == []


def test_artifacts_and_their_versions_as_tables_and_json(project: Path) -> None:
    trained(project)
    listing = cli(project, "artifact", "list")
    assert listing.returncode == 0
    header, row = listing.stdout.splitlines()
    assert header.split() == ["ARTIFACT", "VERSIONS", "LATEST", "CREATED", "TAGS"]
    assert row.split()[:3] == ["classifier", "2", "2"]
    versions = json.loads(cli(project, "artifact", "versions", "classifier", "--json").stdout)
    assert [(v["version"], v["tags"], v["producer"]["step"]) for v in versions] == [
        ("1", ["t"], "train"),
        ("2", ["t"], "train"),
    ]
    missing = cli(project, "artifact", "versions", "clasifier")
    assert missing.returncode == 1 and "no artifact named 'clasifier'" in missing.stderr


def test_models_versions_and_stage_changes(project: Path) -> None:
    trained(project)
    models = json.loads(cli(project, "model", "list", "--json").stdout)
    assert [(m["name"], m["versions"], m["stages"]) for m in models] == [("churn", 2, {})]
    table = cli(project, "model", "versions", "churn").stdout.splitlines()
    assert table[0].split()[:3] == ["NUMBER", "NAME", "STAGE"]
    assert [line.split()[:3] for line in table[1:]] == [["1", "1", "-"], ["2", "2", "-"]]

    promoted = cli(project, "model", "stage", "churn", "1", "production")
    assert promoted.stdout.strip() == "model churn version 1 is now production"
    refused = cli(project, "model", "stage", "churn", "2", "production")
    assert refused.returncode == 1
    assert "version 1 is there; call set_stage('production', force=True)" in refused.stderr
    forced = json.loads(
        cli(project, "model", "stage", "churn", "latest", "production", "--force", "--json").stdout
    )
    assert forced["version"]["stage"] == "production" and forced["change"]["archived"] == "1"
    versions = json.loads(cli(project, "model", "versions", "churn", "--json").stdout)
    assert [v["stage"] for v in versions] == ["archived", "production"]
    assert [c["version"] for c in versions[1]["stage_history"]] == ["2"]
    assert cli(project, "model", "stage", "churn", "1", "latest").returncode == 1


def test_the_pull_line_counts_merged_metadata_chains_and_registries_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlops_lite.cli.sharing import _report
    from mlops_lite.store.transport.result import TransferResult

    merged = ["refs/mlops/metadata/p/r", "refs/mlops/models/churn", "refs/mlops/artifacts/x"]
    result = TransferResult("pull", "origin", "git", merged=merged)
    _report(result, argparse.Namespace(json=False), "pulled", "from")
    line = capsys.readouterr().out
    assert "; merged 1 run metadata ref and 2 model/artifact refs changed on both sides" in line
