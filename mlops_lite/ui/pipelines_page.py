"""Pipelines and their artifacts: run counts, the latest run, and each output's versions.

An output's versions are the distinct values (artifact ids) it took in the
pipeline's recent runs, newest first. Named artifact versions and models have
their own pages (``artifacts_page``, ``models_page``).
"""

from __future__ import annotations

from typing import Final

from mlops_lite.client import Client, RecordedPipeline, Run
from mlops_lite.errors import MlopsLiteError
from mlops_lite.ui.html import Markup, join, tag
from mlops_lite.ui.links import Links
from mlops_lite.ui.widgets import Page, link, status_badge, timestamp

__all__ = ["RECENT_RUNS", "pipelines_page"]

RECENT_RUNS: Final = 20
"""How many of a pipeline's newest runs its artifact versions are read from."""


def _versions(runs: list[Run], links: Links) -> Markup:
    """Per output (``step.output``): each distinct artifact, with the newest run that made it."""
    versions: dict[str, dict[str, tuple[Run, str, str]]] = {}
    for run in runs:
        if run.status in ("unreadable", "running"):
            continue
        try:
            steps = run.steps
        except MlopsLiteError:
            continue
        for step in steps.values():
            for name, artifact in step.outputs.items():
                seen = versions.setdefault(f"{step.name}.{name}", {})
                seen.setdefault(artifact.id, (run, step.name, artifact.type_name))
    rows = []
    for output, found in versions.items():
        cells = [
            link(
                links.output(run.sha, step, output.partition(".")[2]),
                artifact_id[:10],
                class_="mono",
            )
            for artifact_id, (run, step, _) in found.items()
        ]
        type_name = next(iter(found.values()))[2]
        rows.append(
            tag(
                "tr",
                {"data-output": output},
                tag("td", None, output),
                tag("td", {"class": "mono"}, type_name),
                tag("td", {"class": "num"}, len(found)),
                tag("td", None, join(cells, " ")),
            )
        )
    if not rows:
        return tag("p", {"class": "muted"}, "no outputs recorded yet")
    return tag(
        "table",
        {"class": "artifacts"},
        tag(
            "thead",
            None,
            tag(
                "tr",
                None,
                [tag("th", None, h) for h in ("Output", "Type", "Versions", "Newest first")],
            ),
        ),
        tag("tbody", None, rows),
    )


def _pipeline(client: Client, pipeline: RecordedPipeline, links: Links) -> Markup:
    page = client.find_runs(pipeline=pipeline.name, limit=RECENT_RUNS)
    latest = page.runs[0] if page.runs else None
    return tag(
        "section",
        {"class": "card pipeline", "data-pipeline": pipeline.name},
        tag("h2", None, link(links.runs({"pipeline": pipeline.name}), pipeline.name)),
        tag(
            "p",
            None,
            f"{page.total:,} run{'s' if page.total != 1 else ''}; latest ",
            link(links.run(latest.sha), latest.name) if latest else "-",
            " ",
            status_badge(latest.status) if latest else "",
            " ",
            tag("span", {"class": "muted"}, timestamp(latest.start_time) if latest else ""),
        ),
        tag("h3", None, f"Artifacts in the last {min(page.total, RECENT_RUNS)} runs"),
        _versions(page.runs, links),
    )


def pipelines_page(client: Client, links: Links, only: list[str] | None = None) -> Page:
    """Every pipeline (or those in ``only``), newest activity first."""
    pipelines = [p for p in client.list_pipelines() if only is None or p.name in only]
    sections = [_pipeline(client, p, links) for p in pipelines]
    body = join(
        [
            tag("h1", None, "Pipelines"),
            join(sections)
            if sections
            else tag("p", {"class": "notice"}, "No pipeline has run yet."),
        ]
    )
    return Page("Pipelines", body, "pipelines")
