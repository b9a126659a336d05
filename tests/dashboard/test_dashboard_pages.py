"""The dashboard's pages over HTTP, on a repository with every kind of run."""

from __future__ import annotations

import html
import http.client
import re
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import git, run_script, wait_while_running

from .conftest import HOSTILE, DashboardRepository, live_run


def get(url: str, *, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def raw(url: str, method: str, path: str, headers: dict[str, str] | None = None) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.request(method, path, headers=headers or {})
    status = connection.getresponse().status
    connection.close()
    return status


def test_runs_page_lists_every_kind_of_run(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    repo = dashboard_repository
    status, page = get(dashboard_url + "/")
    assert status == 200
    for sha in [*repo.sweep, repo.failed, repo.running, repo.teammate]:
        assert sha[:10] in page
    assert "status-failed" in page and "status-running" in page
    assert "alice@example.com" in page
    assert "runs 1–9 of 9" in page
    # Parameters and metrics are columns by default, from the index.
    assert "param:lr" in page and "metric:accuracy" in page


def test_runs_page_filters_by_status_author_text_and_sorts_by_a_metric(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    repo = dashboard_repository
    _, failed = get(dashboard_url + "/?status=failed")
    assert repo.failed[:10] in failed and repo.sweep[0][:10] not in failed
    _, alice = get(dashboard_url + "/?author=alice%40example.com")
    assert repo.teammate[:10] in alice and repo.failed[:10] not in alice
    _, found = get(dashboard_url + f"/?q={repo.sweep[1][:8]}")
    assert "runs 1–1 of 1" in found and repo.sweep[1][:10] in found
    _, by_accuracy = get(
        dashboard_url + "/?sort=metric%3Aaccuracy&order=asc&columns=1&col=metric%3Aaccuracy"
    )
    order = [by_accuracy.index(sha[:10]) for sha in repo.sweep]
    assert order == sorted(order)  # lr 0.1, 0.2, 0.3: accuracy rises
    assert by_accuracy.count('class="column"') == 1


def test_run_page_draws_the_dag_with_each_steps_state(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    status, page = get(dashboard_url + f"/runs/{dashboard_repository.sweep[1]}")
    assert status == 200
    svg = re.search(r'<svg class="dag".*?</svg>', page, re.DOTALL)
    assert svg is not None
    for step in ("load", "features", "train", "evaluate", "picture"):
        assert f'data-node="{step}"' in svg.group(0)
    assert "state-cached" in svg.group(0) and "state-completed" in svg.group(0)
    assert "code commit" in page and "tester@example.com" in page


def test_failed_and_running_runs_say_so(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    repo = dashboard_repository
    _, failed = get(dashboard_url + f"/runs/{repo.failed}")
    assert "the loss diverged" in failed and "state-failed" in failed
    _, step = get(dashboard_url + f"/runs/{repo.failed}/steps/train")
    assert "ValueError" in step and "the loss diverged" in step
    _, running = get(dashboard_url + f"/runs/{repo.running}")
    assert "status-running" in running and "pending" in running
    assert "data-changes" in running  # a live page: it reloads when the run finishes


def test_step_page_shows_logs_metadata_and_previews(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    # Runs recorded by this clone are trusted: their pickles are previewed.
    base = dashboard_url + f"/runs/{dashboard_repository.sweep[0]}/steps"
    _, load = get(base + "/load")
    assert "loading &lt;b&gt;rows&lt;/b&gt;" in load
    assert "40 rows × 2 columns" in load and "preview-summary" in load
    _, features = get(base + "/features")
    assert "20 × 10" in features and "float64" in features
    assert 'class="chart"' in features  # the histogram
    _, picture = get(base + "/picture")
    assert 'src="data:image/png;base64,' in picture
    _, train = get(base + "/train")
    assert "&quot;loss&quot;" in train and "Model(weight=0.1)" in train


def test_a_teammates_pickle_is_not_unpickled_for_a_preview(
    dashboard_repository: DashboardRepository,
    dashboard_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = dashboard_repository
    monkeypatch.setenv("UNPICKLE_MARKER", str(repo.marker))
    _, page = get(dashboard_url + f"/runs/{repo.teammate}/steps/train")
    assert "pickled, not loaded" in page and "alice@example.com" in page
    _, output = get(dashboard_url + f"/runs/{repo.teammate}/steps/train/outputs/model")
    assert "pickled, not loaded" in output
    assert not repo.teammate_unpickled


def test_text_from_runs_is_escaped_everywhere(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    hostile = dashboard_repository.sweep[1]
    pages = [
        "/",
        f"/runs/{hostile}",
        f"/runs/{hostile}/steps/train",
        f"/runs/{hostile}/steps/evaluate/outputs/report",
        "/compare?" + "&".join(f"run={sha}" for sha in dashboard_repository.sweep),
        f"/?q=%3Cscript%3E&author={HOSTILE}",
    ]
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for path in pages:
        status, page = get(dashboard_url + path)
        assert status == 200, path
        assert HOSTILE not in page, path
        assert "<i>not italic</i>" not in page, path
    _, train = get(dashboard_url + f"/runs/{hostile}/steps/train")
    assert escaped in train


def test_compare_highlights_differences_and_charts_metrics(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    query = "&".join(f"run={sha}" for sha in dashboard_repository.sweep)
    status, page = get(dashboard_url + "/compare?" + query)
    assert status == 200 and "Comparing 3 runs" in page
    assert re.search(r'<tr class="differs" data-column="param:lr">', page)
    assert re.search(r'<tr data-column="param:fail">', page)
    chart = re.search(r'data-metric="metric:accuracy".*?</figure>', page, re.DOTALL)
    assert chart is not None and chart.group(0).count('class="point"') == 3
    assert "over param:lr" in chart.group(0)
    _, only = get(dashboard_url + "/compare?diff=1&" + query)
    assert "param:fail" not in only and "param:lr" in only


def test_output_page_draws_its_lineage_back_to_the_code(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    sha = dashboard_repository.sweep[0]
    _, page = get(dashboard_url + f"/runs/{sha}/steps/evaluate/outputs/report")
    lineage = re.search(r'aria-label="lineage of evaluate.report".*?</svg>', page, re.DOTALL)
    assert lineage is not None
    for node in ("code", "load", "load.frame", "features", "train", "train.model", "evaluate"):
        assert f'data-node="{node}"' in lineage.group(0), node
    assert "accuracy 0.7 &lt;i&gt;not italic&lt;/i&gt;" in page


def test_pipelines_page_lists_each_outputs_versions(dashboard_url: str) -> None:
    _, page = get(dashboard_url + "/pipelines")
    row = re.search(r'<tr data-output="train.model">.*?</tr>', page, re.DOTALL)
    assert row is not None and '<td class="num">4</td>' in row.group(0)  # lr 0.1-0.4
    frame = re.search(r'<tr data-output="load.frame">.*?</tr>', page, re.DOTALL)
    assert frame is not None and '<td class="num">1</td>' in frame.group(0)


@pytest.mark.parametrize(
    "path",
    [
        "/runs/../../../etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/runs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/runs/HEAD/steps/..%2f..%2fsweep.py",
        "/static/../sweep.py",
        "/.git/config",
    ],
)
def test_no_request_reaches_a_file(dashboard_url: str, path: str) -> None:
    parts = urlsplit(dashboard_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    assert response.status == 404
    assert "root:" not in body and "PIPELINE" not in body and "[core]" not in body


def test_the_dashboard_is_read_only(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    root = dashboard_repository.root
    refs = git(root, "for-each-ref")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert raw(dashboard_url, method, "/") == 405
    assert raw(dashboard_url, "GET", "/", {"Host": "attacker.example"}) == 421
    assert raw(dashboard_url, "HEAD", "/", {"Host": "localhost"}) == 200
    assert git(root, "for-each-ref") == refs
    assert git(root, "status", "--porcelain") == ""


def test_unknown_runs_steps_and_outputs_are_404_naming_what_exists(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    sha = dashboard_repository.sweep[0]
    status, page = get(dashboard_url + "/runs/ffff0000")
    assert status == 404 and "no run named" in page
    status, page = get(dashboard_url + f"/runs/{sha}/steps/nope")
    assert status == 404 and "train" in page
    status, page = get(dashboard_url + f"/runs/{sha}/steps/train/outputs/nope")
    assert status == 404 and "model" in page


TINY = textwrap.dedent(
    """
    import sys
    from mlops_lite import pipeline, step

    @step
    def count(n: int) -> int:
        return n

    @pipeline
    def tiny(n: int = 1):
        count(n=n)

    if __name__ == "__main__":
        print("RUN", tiny(n=int(sys.argv[1])).sha)
    """
)


def test_pages_refresh_as_runs_arrive_a_teammates_after_pull(project: Path, tmp_path: Path) -> None:
    from mlops_lite.ui.server import DashboardServer

    (project / "tiny.py").write_text(TINY)
    git(project, "add", "tiny.py")
    git(project, "commit", "-qm", "tiny")
    run_script(project, "tiny.py", "1")
    teammate = tmp_path / "teammate"
    git(tmp_path, "clone", "-q", str(project), str(teammate))
    theirs = run_script(teammate, "tiny.py", "2").stdout.split()[-1]

    server = DashboardServer(str(project))
    thread = server.start_in_background()
    try:
        url = server.url.rstrip("/")
        _, before = get(url + "/api/changes")
        ours = run_script(project, "tiny.py", "3").stdout.split()[-1]
        _, after_run = get(url + "/api/changes")
        assert after_run != before
        assert ours[:10] in get(url + "/")[1]
        subprocess.run(
            [sys.executable, "-m", "mlops_lite", "pull", str(teammate), "--quiet"],
            cwd=project,
            check=True,
            capture_output=True,
        )
        _, after_pull = get(url + "/api/changes")
        assert after_pull != after_run
        assert theirs[:10] in get(url + "/")[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_models_page_lists_each_models_versions_per_stage(dashboard_url: str) -> None:
    status, page = get(dashboard_url + "/models")
    assert status == 200 and 'href="/models"' in page and 'href="/artifacts"' in page
    row = re.search(r'<tr data-model="churn">.*?</tr>', page, re.DOTALL)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.DOTALL)
    # model, latest, versions, production, staging, archived, none, tags
    assert 'href="/models/churn#version-2"' in cells[1] and "stage-production" in cells[1]
    assert [re.sub(r"<[^>]+>", "", c) for c in cells[2:]] == ["2", "1", "", "1", "", "demo"]


def test_model_page_shows_versions_their_artifacts_and_the_stage_history(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    repo = dashboard_repository
    status, page = get(dashboard_url + "/models/churn")
    assert status == 200
    second = re.search(
        r'<section class="card model-version" id="version-2".*?</section>', page, re.S
    )
    assert second is not None
    assert "stage-production" in second.group(
        0
    ) and f'href="/runs/{repo.models[1]}"' in second.group(0)
    assert 'href="/artifacts/classifier/versions/2"' in second.group(0)
    assert 'href="/artifacts/dataset/versions/1"' in second.group(0)
    assert "&quot;weight&quot;: 2.0" in second.group(0)
    first = re.search(r'id="version-1".*?</section>', page, re.S)
    assert first is not None and "stage-archived" in first.group(0)
    history = re.search(r'<table class="stage-history">.*?</table>', page, re.S)
    assert history is not None
    rows = re.findall(r"<tr[^>]*>.*?</tr>", history.group(0), re.S)[1:]
    # Newest first: version 2 took production and displaced version 1.
    texts = [re.sub(r"<[^>]+>", "|", row) for row in rows]
    assert len(rows) == 2 and "|2|" in texts[0] and "|1|" in texts[0]
    assert "tester@example.com" in texts[0] and "applied" in texts[0]
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_artifact_version_page_draws_its_lineage_and_previews_it(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    repo = dashboard_repository
    status, page = get(dashboard_url + "/artifacts/classifier/versions/2")
    assert status == 200
    lineage = re.search(r'aria-label="lineage of classifier:2".*?</svg>', page, re.S)
    assert lineage is not None
    for node in ("code", "prepare", "prepare.dataset", "fit", "fit.classifier"):
        assert f'data-node="{node}"' in lineage.group(0), node
    assert f'href="/runs/{repo.models[1]}/steps/fit"' in page
    assert 'href="/models/churn#version-2"' in page and "ModelArtifact" in page
    assert "&quot;weight&quot;: 2.0" in page  # the preview
    assert HOSTILE not in page and "&quot;note&quot;: &quot;&lt;script&gt;" in page
    status, missing = get(dashboard_url + "/artifacts/classifier/versions/9")
    assert status == 404 and "versions: 1, 2" in missing


def test_artifacts_page_lists_named_versions_with_escaped_tags(dashboard_url: str) -> None:
    status, page = get(dashboard_url + "/artifacts")
    assert status == 200
    dataset = re.search(r'<tr data-artifact="dataset">.*?</tr>', page, re.S)
    assert dataset is not None and "&lt;script&gt;" in dataset.group(0)
    model = re.search(r'<tr data-artifact="model">.*?</tr>', page, re.S)
    assert model is not None and '<td class="num">4</td>' in model.group(0)  # lr 0.1-0.4
    assert HOSTILE not in page


def test_run_and_step_pages_link_the_model_version_and_named_outputs(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    sha = dashboard_repository.models[1]
    _, run = get(dashboard_url + f"/runs/{sha}")
    assert 'href="/models/churn#version-2"' in run
    assert 'href="/artifacts/classifier/versions/2"' in run
    _, step = get(dashboard_url + f"/runs/{sha}/steps/fit")
    assert 'class="version" href="/artifacts/classifier/versions/2"' in step or (
        'href="/artifacts/classifier/versions/2" class="version"' in step
    )


def test_a_teammates_pickled_artifact_version_is_not_unpickled_for_a_preview(
    dashboard_repository: DashboardRepository,
    dashboard_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlops_lite import Client

    repo = dashboard_repository
    monkeypatch.setenv("UNPICKLE_MARKER", str(repo.marker))
    with Client(repo.root) as client:
        version = next(
            v for v in client.list_artifact_versions("model") if v.author == "alice@example.com"
        ).version
    _, page = get(dashboard_url + f"/artifacts/model/versions/{version}")
    assert "pickled, not loaded" in page and "alice@example.com" in page
    assert not repo.teammate_unpickled


def test_compare_shows_an_unreadable_run_with_its_reason(project: Path) -> None:
    from mlops_lite.store import GitStore
    from mlops_lite.ui.app import Dashboard
    from tests.integration.test_hostile_runs import GOOD, _record, _write_run

    (project / "good.py").write_text(GOOD)
    out = run_script(project, "good.py").stdout
    good = next(line.split()[1] for line in out.splitlines() if line.startswith("RUN"))
    store = GitStore.open(project)
    bad = _write_run(store, git(project, "rev-parse", "HEAD"), "bad", _record({"run_name": "x"}))
    store.refs.compare_and_swap("refs/mlops/runs/bad/20260101-000000-000000-bad", None, bad)
    store.close()
    response = Dashboard(str(project)).handle(f"/compare?run={good}&run={bad}")
    page = response.body.decode()
    assert response.status == 200, page
    assert "Comparing 2 runs" in page and "status-unreadable" in page
    reason = re.search(r'<div class="error unreadable-reason">(.*?)</div>', page, re.S)
    assert reason is not None and reason.group(1).strip()


def test_a_running_steps_page_follows_its_log_until_the_step_ends(project: Path) -> None:
    from mlops_lite.ui.app import Dashboard

    dashboard = Dashboard(str(project))

    def text(path: str) -> str:
        response = dashboard.handle(html.unescape(path))
        assert response.status == 200, (path, response.body[:300])
        return response.body.decode()

    with live_run(project) as live:
        run_page = text(f"/runs/{live.sha}")
        assert re.search(r'data-node="first".*?state-completed', run_page, re.S)
        assert re.search(r'data-node="slow".*?state-running', run_page, re.S)
        page = text(f"/runs/{live.sha}/steps/slow")
        follow = re.search(r'data-follow="([^"]+)"', page)
        changes = re.search(r'data-changes="([^"]+)" data-token="([^"]+)"', page)
        reload = re.search(r'data-reload="([^"]+)"', page)
        assert follow and changes and reload
        # Addressed by the run's name: its sha changes when it ends.
        assert follow.group(1) == f"/runs/live%2F{live.name}/steps/slow/logs.txt"
        assert reload.group(1) == f"/runs/live%2F{live.name}/steps/slow"
        assert "line one" in text(follow.group(1)) and "line two" not in text(follow.group(1))
        live.open_gate(1)
        wait_while_running(
            lambda: "line two" in text(follow.group(1)), live.process, "the second line"
        )
        assert text(changes.group(1)) == changes.group(2)  # the same step still runs
        live.finish()
        assert text(changes.group(1)) != changes.group(2)
        ended = text(reload.group(1))
        assert "status-completed" in ended and "line two" in ended
        assert '<pre class="logs" data-follow' not in ended and "data-changes=" not in ended


def test_lineage_crosses_runs_through_a_named_version_used_as_an_input(
    dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    from mlops_lite import Client

    repo = dashboard_repository
    with Client(repo.root) as client:
        classifier = client.get_artifact_version("classifier", "2").id
    status, page = get(dashboard_url + "/artifacts/predictions/versions/1")
    assert status == 200
    lineage = re.search(r'aria-label="lineage of predictions:1".*?</svg>', page, re.S)
    assert lineage is not None
    producer = repo.models[1][:10]  # the churn run that made classifier:2
    for node in (
        "code", "prepare", "predict", f"version/{classifier}",
        f"{producer}/fit", f"{producer}/prepare.dataset", f"{producer}/code",
    ):  # fmt: skip
        assert f'data-node="{node}"' in lineage.group(0), node
    assert 'href="/artifacts/classifier/versions/2"' in lineage.group(0)
    assert f'href="/runs/{repo.models[1]}/steps/fit"' in lineage.group(0)
