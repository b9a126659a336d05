"""A step's page (logs, metadata, inputs, outputs with previews) and an output's page (lineage)."""

from __future__ import annotations

from mlops_lite.client import Artifact, Client, StepRun
from mlops_lite.client.previews import preview_artifact
from mlops_lite.errors import MlopsLiteError
from mlops_lite.ui.html import Markup, join, tag
from mlops_lite.ui.lineage import lineage_graph
from mlops_lite.ui.links import Links
from mlops_lite.ui.widgets import (
    Page,
    duration,
    facts,
    json_block,
    link,
    render_preview,
    status_badge,
)

__all__ = ["named_version", "output_page", "step_page"]


def named_version(artifact: Artifact, links: Links) -> Markup | None:
    """The named artifact version an output is, linked to its page (None for an unnamed one)."""
    try:
        version = artifact.artifact_version
    except MlopsLiteError:  # its registry cannot be read here: the output is still shown
        return None
    if version is None:
        return None
    label = f"{version.name}:{version.version}"
    return link(links.artifact_version(version.name, version.version), label, class_="version")


def _artifact_facts(artifact: Artifact, links: Links) -> Markup:
    return facts(
        [
            ("named version", named_version(artifact, links)),
            ("type", tag("span", {"class": "mono"}, artifact.type_name)),
            ("size", f"{artifact.size:,} bytes"),
            ("materializer", artifact.materializer),
            ("artifact id", tag("span", {"class": "mono"}, artifact.id)),
            ("pickled", _pickled(artifact)),
        ]
    )


def _pickled(artifact: Artifact) -> str | None:
    try:
        return "yes: loading it runs code" if artifact.uses_pickle else None
    except MlopsLiteError:  # its objects are missing: the preview says so
        return None


def step_page(links: Links, step: StepRun) -> Page:
    """Everything about one step of a run; a running step's logs follow as it prints."""
    run = step.run
    cached_from = None
    if step.cached and step.cached_from:
        source = step.cached_from
        cached_from = (
            f"{source.get('pipeline', '?')}/{source.get('run', '?')}, "
            f"step {source.get('step', '?')}"
        )
    record = step.record
    summary = facts(
        [
            ("run", link(links.run(run.sha), f"{run.pipeline_name} / {run.name}")),
            ("status", status_badge("cached" if step.cached else step.status)),
            ("reused from", cached_from),
            ("duration", duration(step.duration)),
            ("attempts", str(step.attempts) if step.attempts > 1 else None),
            ("function", tag("span", {"class": "mono"}, record.function)),
            (
                "cache key",
                tag("span", {"class": "mono"}, record.cache_key) if record.cache_key else None,
            ),
        ]
    )
    inputs = [
        tag(
            "tr",
            None,
            tag("td", None, argument),
            tag(
                "td",
                None,
                link(
                    links.output(run.sha, artifact.step_name, artifact.name),
                    f"{artifact.step_name}.{artifact.name}",
                ),
            ),
            tag("td", {"class": "mono"}, artifact.type_name),
        )
        for argument, artifact in step.inputs.items()
    ]
    outputs = [
        tag(
            "section",
            {"class": "card output", "data-output": name},
            tag("h3", None, link(links.output(run.sha, step.name, name), name)),
            _artifact_facts(artifact, links),
            render_preview(preview_artifact(artifact), name=name),
        )
        for name, artifact in step.outputs.items()
    ]
    logs = step.logs
    # Addressed by name, not sha: the run's sha changes when it ends.
    stable = f"{run.pipeline_name}/{run.name}"
    running = run.status == "running"
    follow = links.logs(stable, step.name) if running and step.status == "running" else None
    none = tag("p", {"class": "muted"}, "none")
    parts = [
        tag("h1", None, step.name),
        tag("div", {"class": "card"}, summary),
        tag("h2", None, "Error") if step.error else "",
        tag("pre", {"class": "error step-error"}, step.error) if step.error else "",
        tag("h2", None, "Outputs"),
        tag("div", {"class": "grid"}, outputs) if outputs else none,
        tag("h2", None, "Logs"),
        tag("pre", {"class": "logs", "data-follow": follow}, logs)
        if logs or follow
        else tag("p", {"class": "muted"}, "The step printed and logged nothing."),
        tag("h2", None, "Metadata"),
        json_block(step.metadata) if step.metadata else none,
        tag("h2", None, "Parameters"),
        json_block(step.parameters) if step.parameters else none,
        tag("h2", None, "Inputs"),
        tag("table", {"class": "inputs"}, tag("tbody", None, inputs)) if inputs else none,
        tag("details", None, tag("summary", None, "Settings"), json_block(record.settings))
        if record.settings
        else "",
    ]
    return Page(
        f"{step.name} · {run.name}",
        join(parts),
        live=running,
        watch=stable if running else None,
        reload=links.step(stable, step.name) if running else None,
    )


def output_page(client: Client, links: Links, step: StepRun, name: str, artifact: Artifact) -> Page:
    """One output: its preview, where it came from, and which steps used it."""
    run = step.run
    consumers = [
        other
        for other in run.steps.values()
        if any(a.step_name == step.name and a.name == name for a in other.inputs.values())
    ]
    parts = [
        tag("h1", None, f"{step.name}.{name}"),
        tag(
            "p",
            None,
            "Output of step ",
            link(links.step(run.sha, step.name), step.name),
            " in run ",
            link(links.run(run.sha), f"{run.pipeline_name} / {run.name}"),
        ),
        tag("div", {"class": "card"}, _artifact_facts(artifact, links)),
        tag("h2", None, "Lineage"),
        lineage_graph(client, run, step.name, name, links),
        tag("h2", None, "Used by"),
        join([link(links.step(run.sha, c.name), c.name) for c in consumers], ", ")
        if consumers
        else tag("p", {"class": "muted"}, "no step of this run"),
        tag("h2", None, "Preview"),
        render_preview(preview_artifact(artifact), name=name),
    ]
    return Page(f"{step.name}.{name} · {run.name}", join(parts))
