"""The dashboard in a real browser: Debian's chromium, driven by Selenium through chromedriver.

Every page type is opened on a repository with real runs; a page fails on any
message the browser logs as an error (a JavaScript error, a blocked script, a
resource it could not load). Screenshots land in the test's temporary directory;
``MLOPS_LITE_UPDATE_SCREENSHOTS=1`` also writes the ones the README shows into
docs/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, git, run_script

from .conftest import HOSTILE, DashboardRepository, live_run

CHROMIUM = os.environ.get("MLOPS_LITE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="chromium and chromedriver are not installed (.ci/install-system-deps.sh installs them)",
)

DOCS = REPO_ROOT / "docs" / "screenshots"
# Read at import: each test's environment is scrubbed of MLOPS_LITE_* variables.
UPDATE_DOCS = os.environ.get("MLOPS_LITE_UPDATE_SCREENSHOTS") == "1"
IN_DOCS = {"runs", "run", "step-frame", "compare", "model", "artifact-version"}


class Browser:
    """A headless chromium, and the checks every page gets."""

    def __init__(self, driver: Any, shots: Path) -> None:
        self.driver = driver
        self.shots = shots

    def open(self, url: str, shot: str) -> Any:
        self.driver.get(url)
        return self.settled(shot)

    def settled(self, shot: str) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        errors = [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
        self.driver.save_screenshot(str(self.shots / f"{shot}.png"))
        if UPDATE_DOCS and shot in IN_DOCS:
            DOCS.mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(DOCS / f"{shot}.png"))
        return self.driver

    def texts(self, selector: str) -> list[str]:
        from selenium.webdriver.common.by import By

        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, selector)]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver is given: Selenium Manager never looks for (or downloads) one.
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield Browser(driver, tmp_path_factory.mktemp("screenshots"))
    finally:
        driver.quit()


def by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def test_runs_page_lists_runs_and_compares_the_selected_ones(
    browser: Browser, dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    driver = browser.open(dashboard_url + "/", "runs")
    rows = by_css(driver, "table.runs tbody tr")
    assert len(rows) == 9
    statuses = browser.texts("table.runs .status")
    assert {"completed", "failed", "running"} <= set(statuses)
    assert "alice@example.com" in driver.find_element("css selector", "table.runs").text
    for sha in dashboard_repository.sweep:
        by_css(driver, f'input[name="run"][value="{sha}"]')[0].click()
    by_css(driver, "#compare-form button")[0].click()
    browser.settled("compare")
    assert "Comparing 3 runs" in driver.find_element("css selector", "h1").text
    highlighted = by_css(driver, 'tr.differs[data-column="param:lr"] td')
    assert highlighted and highlighted[0].value_of_css_property("background-color") != (
        "rgba(0, 0, 0, 0)"
    )
    assert len(by_css(driver, 'figure[data-metric="metric:accuracy"] circle.point')) == 3


def test_filters_and_columns_apply_from_the_form(
    browser: Browser, dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    from selenium.webdriver.support.ui import Select

    driver = browser.open(dashboard_url + "/", "runs-form")
    Select(by_css(driver, 'select[name="status"]')[0]).select_by_value("failed")
    by_css(driver, "form.filters button")[0].click()
    browser.settled("runs-failed")
    assert len(by_css(driver, "table.runs tbody tr")) == 1
    assert (
        dashboard_repository.failed[:10] in driver.find_element("css selector", "table.runs").text
    )


def test_run_page_draws_the_dag_and_links_each_step(
    browser: Browser, dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    driver = browser.open(dashboard_url + f"/runs/{dashboard_repository.sweep[1]}", "run")
    nodes = by_css(driver, "svg.dag g.node-group")
    assert {n.get_attribute("data-node") for n in nodes} == {
        "load", "features", "train", "evaluate", "picture",
    }  # fmt: skip
    assert by_css(driver, "svg.dag rect.state-cached")
    assert by_css(driver, "svg.dag")[0].size["width"] > 300
    by_css(driver, 'svg.dag a g[data-node="train"]')[0].click()
    browser.settled("step-from-dag")
    assert driver.find_element("css selector", "h1").text == "train"
    # The hostile note is shown as text, and no script of it ran.
    assert HOSTILE in driver.find_element("css selector", "pre.logs").text
    assert driver.execute_script("return document.querySelectorAll('main script').length") == 0


def test_step_page_previews_a_frame_an_array_and_an_image(
    browser: Browser, dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    base = dashboard_url + f"/runs/{dashboard_repository.sweep[0]}/steps"
    driver = browser.open(base + "/load", "step-frame")
    assert len(by_css(driver, "table.preview-table tbody tr")) == 20
    assert "loading <b>rows</b>" in driver.find_element("css selector", "pre.logs").text
    driver = browser.open(base + "/features", "step-array")
    assert len(by_css(driver, "svg.chart rect.bar")) == 20
    driver = browser.open(base + "/picture", "step-image")
    image = by_css(driver, "img.preview")[0]
    assert driver.execute_script("return arguments[0].naturalWidth", image) == 24


def test_failed_running_and_teammate_runs_show_what_a_user_looks_for(
    browser: Browser, dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    repo = dashboard_repository
    driver = browser.open(dashboard_url + f"/runs/{repo.failed}", "run-failed")
    assert "the loss diverged" in driver.find_element("css selector", "ul.step-errors").text
    driver = browser.open(dashboard_url + f"/runs/{repo.running}", "run-running")
    assert by_css(driver, "svg.dag rect.state-running")
    driver = browser.open(dashboard_url + f"/runs/{repo.teammate}/steps/train", "step-teammate")
    assert "pickled, not loaded" in driver.find_element("css selector", ".preview-unavailable").text
    assert not repo.teammate_unpickled


def test_output_and_pipelines_pages(
    browser: Browser, dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    sha = dashboard_repository.sweep[0]
    driver = browser.open(dashboard_url + f"/runs/{sha}/steps/evaluate/outputs/report", "output")
    assert len(by_css(driver, "svg.dag g.node-group")) >= 7
    assert "<i>not italic</i>" in driver.find_element("css selector", "pre.preview-text").text
    driver = browser.open(dashboard_url + "/pipelines", "pipelines")
    assert by_css(driver, 'tr[data-output="train.model"]')


def test_models_model_and_artifact_version_pages(
    browser: Browser, dashboard_repository: DashboardRepository, dashboard_url: str
) -> None:
    driver = browser.open(dashboard_url + "/models", "models")
    assert by_css(driver, 'tr[data-model="churn"]')
    by_css(driver, 'tr[data-model="churn"] a')[0].click()
    driver = browser.settled("model")
    assert driver.find_element("css selector", "h1").text == "Model churn"
    assert HOSTILE in driver.find_element("css selector", ".card").text  # as text
    assert len(by_css(driver, "table.stage-history tbody tr")) == 2
    assert by_css(driver, "#version-2 .stage-production")
    by_css(driver, '#version-2 a[href="/artifacts/classifier/versions/2"]')[0].click()
    driver = browser.settled("artifact-version")
    nodes = {n.get_attribute("data-node") for n in by_css(driver, "svg.dag g.node-group")}
    assert {"code", "prepare", "prepare.dataset", "fit", "fit.classifier"} <= nodes
    assert '"weight": 2.0' in driver.find_element("css selector", "pre.preview-json").text
    by_css(driver, 'svg.dag a g[data-node="fit"]')[0].click()
    browser.settled("artifact-producer")
    assert driver.find_element("css selector", "h1").text == "fit"
    assert driver.execute_script("return document.querySelectorAll('main script').length") == 0


def test_a_running_steps_page_shows_new_log_lines_as_they_come(
    browser: Browser, project: Path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    from mlops_lite.ui.server import DashboardServer

    server = DashboardServer(str(project))
    thread = server.start_in_background()
    try:
        with live_run(project) as live:
            driver = browser.open(server.url + f"runs/{live.sha}/steps/slow", "step-live")
            assert "line one" in driver.find_element("css selector", "pre.logs").text
            driver.execute_script("window.sameDocument = true")
            live.open_gate(1)
            WebDriverWait(driver, 30).until(
                lambda d: "line two" in d.find_element("css selector", "pre.logs").text
            )
            # Followed in place (no reload) while the step runs...
            assert driver.execute_script("return window.sameDocument") is True
            live.finish()

            # ...and once it ends, the page reloads at the run's lasting address
            # (an element found just before the reload goes stale: look again).
            def status(d: Any) -> str:
                try:
                    return str(d.find_element("css selector", ".card .status").text)
                except WebDriverException as error:
                    # Read while the old document goes: chromium's words for a stale node.
                    if "does not belong to the document" in str(error):
                        return ""
                    raise

            WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda d: "completed" in status(d)
            )
            browser.settled("step-live-ended")
            assert f"live%2F{live.name}" in driver.current_url
            assert "line two" in driver.find_element("css selector", "pre.logs").text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_report_opens_from_files_with_working_links(
    browser: Browser, dashboard_repository: DashboardRepository, tmp_path: Path
) -> None:
    from mlops_lite.ui.report import write_report

    output = tmp_path / "report"
    write_report(["sweep"], output, path=dashboard_repository.root)
    driver = browser.open((output / "index.html").as_uri(), "report-index")
    assert len(by_css(driver, "table.runs tbody tr")) == 6
    by_css(driver, "a.run-link")[0].click()
    browser.settled("report-run")
    assert by_css(driver, "svg.dag")
    driver = browser.open((output / "compare.html").as_uri(), "report-compare")
    assert "Comparing 6 runs" in driver.find_element("css selector", "h1").text


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


def test_the_runs_page_reloads_itself_when_a_run_arrives(browser: Browser, project: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    from mlops_lite.ui.server import DashboardServer

    (project / "tiny.py").write_text(TINY)
    git(project, "add", "tiny.py")
    git(project, "commit", "-qm", "tiny")
    run_script(project, "tiny.py", "1")
    server = DashboardServer(str(project))
    thread = server.start_in_background()
    try:
        driver = browser.open(server.url, "live-before")
        assert len(by_css(driver, "table.runs tbody tr")) == 1
        new = run_script(project, "tiny.py", "2").stdout.split()[-1]
        WebDriverWait(driver, 30).until(lambda d: new[:10] in d.page_source)
        browser.settled("live-after")
        assert len(by_css(driver, "table.runs tbody tr")) == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_browser_tests_use_the_systems_chromium() -> None:
    # No browser download: the binary is Debian's (or one named on purpose).
    assert Path(CHROMIUM).resolve().is_file()
    assert sys.platform != "win32"
