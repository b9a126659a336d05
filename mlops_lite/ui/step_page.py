"""A step's page (logs, metadata, inputs, outputs with previews) and an output's page (lineage)."""

from __future__ import annotations

from mlops_lite.client import Artifact, Run, StepRun
from mlops_lite.client.previews import preview_artifact
from mlops_lite.errors import MlopsLiteError
from mlops_lite.ui.dag import Node, draw_graph
from mlops_lite.ui.html import Markup, join, tag
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

__all__ = ["lineage_graph", "output_page", "step_page"]


def _artifact_facts(artifact: Artifact) -> Markup:
    return facts(
        [
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
    """Everything about one step of a run."""
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
            _artifact_facts(artifact),
            render_preview(preview_artifact(artifact), name=name),
        )
        for name, artifact in step.outputs.items()
    ]
    logs = step.logs
    follow = links.logs(run.sha, step.name) if run.status == "running" else None
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
    return Page(f"{step.name} · {run.name}", join(parts), live=run.status == "running")


def lineage_graph(run: Run, step_name: str, output: str, links: Links) -> Markup:
    """An output's lineage within its run: step ← input artifacts ← their steps … ← code."""
    steps = run.steps
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    pending = [step_name]
    code = "code"
    while pending:
        name = pending.pop()
        step = steps.get(name)
        if step is None or name in nodes:
            continue
        nodes[name] = Node(
            name,
            name,
            "cached" if step.cached else step.status,
            "cached" if step.cached else step.status,
            links.step(run.sha, name),
        )
        if not step.inputs:
            edges.append((code, name))
        for artifact in step.inputs.values():
            artifact_node = f"{artifact.step_name}.{artifact.name}"
            nodes.setdefault(
                artifact_node,
                Node(
                    artifact_node,
                    artifact.name,
                    artifact.type_name.rpartition(".")[2],
                    "artifact",
                    links.output(run.sha, artifact.step_name, artifact.name),
                    f"{artifact_node}: {artifact.type_name}, {artifact.size:,} bytes",
                ),
            )
            edges += [(artifact.step_name, artifact_node), (artifact_node, name)]
            pending.append(artifact.step_name)
    target = f"{step_name}.{output}"
    nodes[target] = Node(target, output, "this output", "artifact", None, target)
    edges.append((step_name, target))
    dirty = " (dirty)" if run.code.get("dirty") else ""
    ordered = [
        Node(code, "code", f"{run.code_commit[:10]}{dirty}", "code", None, run.code_commit),
        *nodes.values(),
    ]
    return draw_graph(ordered, edges, label=f"lineage of {target}")


def output_page(links: Links, step: StepRun, name: str, artifact: Artifact) -> Page:
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
        tag("div", {"class": "card"}, _artifact_facts(artifact)),
        tag("h2", None, "Lineage"),
        lineage_graph(run, step.name, name, links),
        tag("h2", None, "Used by"),
        join([link(links.step(run.sha, c.name), c.name) for c in consumers], ", ")
        if consumers
        else tag("p", {"class": "muted"}, "no step of this run"),
        tag("h2", None, "Preview"),
        render_preview(preview_artifact(artifact), name=name),
    ]
    return Page(f"{step.name}.{name} · {run.name}", join(parts))
