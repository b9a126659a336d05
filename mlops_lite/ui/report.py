"""``mlops-lite report``: the dashboard's pages for chosen runs, as self-contained HTML files.

With the runs come the models they worked on and the named artifact versions
they made, each with its page.

Every page is one file with its styles inline and images as ``data:`` URIs; pages
link to each other by relative name, so the folder can be uploaded as a CI
artifact or published as a static site, and opened with no network.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Final

from mlops_lite.client import Client, Run
from mlops_lite.errors import NotFoundError, RunNotFoundError
from mlops_lite.ui.artifacts_page import artifact_version_page, artifacts_page
from mlops_lite.ui.compare_page import compare_page
from mlops_lite.ui.html import join, tag
from mlops_lite.ui.layout import render_page
from mlops_lite.ui.links import ReportLinks
from mlops_lite.ui.models_page import model_page, models_page
from mlops_lite.ui.pipelines_page import pipelines_page
from mlops_lite.ui.run_page import run_page
from mlops_lite.ui.runs_page import runs_table
from mlops_lite.ui.step_page import output_page, step_page
from mlops_lite.ui.widgets import Page

__all__ = ["MAX_RUNS_PER_PIPELINE", "write_report"]

MAX_RUNS_PER_PIPELINE: Final = 100
"""A pipeline named on the command line contributes its newest runs, at most this many."""


def _resolve(client: Client, targets: Sequence[str], per_pipeline: int) -> list[Run]:
    runs: dict[str, Run] = {}
    for target in targets:
        try:
            found = [client.get_pipeline_run(target)]
        except RunNotFoundError as error:
            if target not in {p.name for p in client.list_pipelines()}:
                raise NotFoundError(
                    f"{target!r} is neither a run (name, sha or prefix) nor a pipeline with runs; "
                    "see `mlops-lite runs list`"
                ) from error
            found = client.find_runs(pipeline=target, limit=per_pipeline).runs
        for run in found:
            runs.setdefault(run.sha, run)
    return list(runs.values())


def write_report(
    targets: Sequence[str],
    output: str | os.PathLike[str],
    *,
    path: str | os.PathLike[str] | None = None,
    per_pipeline: int = MAX_RUNS_PER_PIPELINE,
) -> list[str]:
    """Write the pages of ``targets`` (runs or pipelines) into ``output``; return the file paths."""
    written: list[str] = []
    with Client(path) as client:
        runs = _resolve(client, targets, per_pipeline)
        names = {f"{run.pipeline_name}/{run.name}" for run in runs}
        # The models the runs worked on, and the named versions they made.
        models = [
            model
            for model in client.list_models()
            if any(names.intersection(version.run_names) for version in model.versions)
        ]
        versions = [
            version
            for version in client.list_artifact_versions()
            if f"{version.producer_pipeline_name}/{version.producer_run_name}" in names
        ]
        artifacts = [a for a in client.list_artifacts() if any(v.name == a.name for v in versions)]
        links = ReportLinks(
            [run.sha for run in runs],
            compare=len(runs) > 1,
            models=[model.name for model in models],
            artifact_versions=[(version.name, version.version) for version in versions],
        )
        os.makedirs(output, exist_ok=True)

        def write(name: str, page: Page) -> None:
            html = render_page(
                page.title, page.body, links=links, section=page.section, project=client.root
            )
            target = os.path.join(output, name)
            with open(target, "w", encoding="utf-8") as file:
                file.write(html)
            written.append(target)

        table = client.compare_runs(runs)
        generated = time.strftime("%Y-%m-%d %H:%M:%S")
        index = join(
            [
                tag("h1", None, f"Report of {len(runs)} run{'s' if len(runs) != 1 else ''}"),
                tag("p", {"class": "muted"}, f"Written {generated} by mlops-lite report."),
                runs_table(runs, table, links, selectable=False),
                tag("p", None, tag("a", {"href": links.compare([])}, "compare these runs"))
                if len(runs) > 1
                else "",
            ]
        )
        write("index.html", Page("Report", index))
        if len(runs) > 1:
            write("compare.html", compare_page(table, links))
        write(
            "pipelines.html",
            pipelines_page(client, links, only=sorted({run.pipeline_name for run in runs})),
        )
        if models:
            write("models.html", models_page(client, links, models))
        for model in models:
            write(links.file("model", model.name), model_page(client, links, model))
        if artifacts:
            write("artifacts.html", artifacts_page(links, artifacts))
        for version in versions:
            write(
                links.file("artifact", version.name, version.version),
                artifact_version_page(client, links, version),
            )
        for run in runs:
            write(links.file("run", run.sha), run_page(client, links, run))
            if run.status == "unreadable":
                continue
            for step in run.steps.values():
                write(links.file("step", run.sha, step.name), step_page(links, step))
                for name, artifact in step.outputs.items():
                    write(
                        links.file("output", run.sha, step.name, name),
                        output_page(client, links, step, name, artifact),
                    )
    return written
