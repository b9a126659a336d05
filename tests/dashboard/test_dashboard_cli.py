"""`runs list --columns`, `runs compare` and `report` as a user types them."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

from .conftest import HOSTILE, DashboardRepository


def cli(repo: DashboardRepository, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_lite", *args],
        cwd=repo.root,
        env=repo.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runs_list_shows_chosen_parameters_and_metrics_and_sorts_by_one(
    dashboard_repository: DashboardRepository,
) -> None:
    repo = dashboard_repository
    result = cli(
        repo, "runs", "list", "-c", "param:lr,metric:accuracy", "--sort", "metric:accuracy"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[-2:] == ["param:lr", "metric:accuracy"]
    # Highest accuracy first; runs without one (failed, running) last.
    assert lines[1].split()[-2:] == ["0.4", "0.99"]
    assert lines[2].split()[-2:] == ["0.3", "0.9"]
    assert lines[-1].split()[-1] == "-"
    listed = json.loads(
        cli(repo, "runs", "list", "--json", "-c", "param:lr", "--status", "failed").stdout
    )
    assert [(r["sha"], r["values"]) for r in listed] == [(repo.failed, {"param:lr": 0.9})]
    alice = json.loads(cli(repo, "runs", "list", "--json", "--author", "alice@example.com").stdout)
    assert [r["sha"] for r in alice] == [repo.teammate]


def test_a_bad_column_is_an_error_saying_how_to_write_one(
    dashboard_repository: DashboardRepository,
) -> None:
    result = cli(dashboard_repository, "runs", "list", "-c", "accuracy")
    assert result.returncode == 1
    assert "column 'accuracy': write param:NAME or metric:NAME" in result.stderr


def test_runs_compare_prints_a_table_json_and_csv(
    dashboard_repository: DashboardRepository,
) -> None:
    repo = dashboard_repository
    shas = [sha[:10] for sha in repo.sweep]
    table = cli(repo, "runs", "compare", *shas)
    assert table.returncode == 0, table.stderr
    rows = {
        line.split()[0]: line.split()[1:] for line in table.stdout.splitlines() if ":" in line[:20]
    }
    assert rows["param:lr"] == ["0.1", "0.2", "0.3", "*"]
    assert rows["param:fail"] == ["false", "false", "false"]
    assert rows["metric:accuracy"] == ["0.7", "0.8", "0.9", "*"]
    assert HOSTILE in table.stdout  # a terminal shows text as it is
    only = cli(repo, "runs", "compare", "-d", *shas).stdout
    assert "param:fail" not in only and "param:lr" in only
    data = json.loads(cli(repo, "runs", "compare", "--json", *shas).stdout)
    assert data["runs"][0]["values"]["param:lr"] == 0.1 and "param:lr" in data["differing"]
    lines = list(csv.DictReader(io.StringIO(cli(repo, "runs", "compare", "--csv", *shas).stdout)))
    assert [line["metric:loss"] for line in lines] == ["0.5", "0.333333", "0.25"]
    assert [line["sha"] for line in lines] == repo.sweep


def test_report_writes_self_contained_pages_whose_links_all_resolve(
    dashboard_repository: DashboardRepository, tmp_path: Path
) -> None:
    repo = dashboard_repository
    output = tmp_path / "site"
    result = cli(repo, "report", "sweep", repo.teammate[:10], "-o", str(output))
    assert result.returncode == 0, result.stderr
    pages = {page.name: page.read_text() for page in output.glob("*.html")}
    assert {"index.html", "compare.html", "pipelines.html"} <= set(pages)
    assert f"run-{repo.failed}.html" in pages and f"step-{repo.sweep[0]}-train.html" in pages
    for name, html in pages.items():
        assert HOSTILE not in html, name
        assert not re.search(r'(src|href)="(https?:)?//', html), name  # nothing from the network
        for target in re.findall(r'href="([^"]+)"', html):
            assert (output / target).is_file(), (name, target)
    assert "pickled, not loaded" in pages[f"step-{repo.teammate}-train.html"]
    assert not repo.teammate_unpickled
    missing = cli(repo, "report", "no-such-thing", "-o", str(tmp_path / "x"))
    assert missing.returncode == 1 and "neither a run" in missing.stderr


def test_report_writes_the_models_and_artifact_versions_of_its_runs(
    dashboard_repository: DashboardRepository, tmp_path: Path
) -> None:
    repo = dashboard_repository
    output = tmp_path / "site"
    result = cli(repo, "report", "churn", "-o", str(output))
    assert result.returncode == 0, result.stderr
    pages = {page.name: page.read_text() for page in output.glob("*.html")}
    assert {"models.html", "model-churn.html", "artifacts.html"} <= set(pages)
    assert {"artifact-classifier-1.html", "artifact-classifier-2.html"} <= set(pages)
    # Only the versions these runs made: the sweep's are not in this report.
    assert not any(name.startswith("artifact-model-") for name in pages)
    assert 'href="model-churn.html#version-2"' in pages[f"run-{repo.models[1]}.html"]
    assert 'aria-label="lineage of classifier:2"' in pages["artifact-classifier-2.html"]
    for name, html in pages.items():
        assert HOSTILE not in html, name
        assert not re.search(r'(src|href)="(https?:)?//', html), name
        for target in re.findall(r'href="([^"#]+)', html):
            assert (output / target).is_file(), (name, target)
