"""A run's page: its DAG with each step's state, and everything recorded about it."""

from __future__ import annotations

from mlops_lite.client import Artifact, Client, Run, StepRun
from mlops_lite.errors import MlopsLiteError
from mlops_lite.ui.dag import Node, draw_graph
from mlops_lite.ui.html import Markup, join, tag
from mlops_lite.ui.links import Links
from mlops_lite.ui.step_page import named_version
from mlops_lite.ui.widgets import Page, duration, facts, json_block, link, status_badge, timestamp

__all__ = ["run_graph", "run_page"]


def run_graph(run: Run, links: Links) -> Markup:
    """The run's steps as a DAG; steps not recorded yet (a running run) drawn as pending."""
    steps = run.steps
    nodes: list[Node] = []
    edges: list[tuple[str, str]] = []
    for name in [*run.record.step_names, *(n for n in steps if n not in run.record.step_names)]:
        step = steps.get(name)
        if step is None:
            state = "running" if run.status == "running" else "skipped"
            detail = "pending" if run.status == "running" else "not recorded"
            nodes.append(Node(name, name, detail, state))
            continue
        state = "cached" if step.cached else step.status
        detail = "cached" if step.cached else f"{step.status} · {duration(step.duration)}"
        nodes.append(Node(name, name, detail, state, links.step(run.sha, name)))
        edges.extend((upstream, name) for upstream in step.record.upstream)
    return draw_graph(nodes, edges, label=f"steps of run {run.name}")


def _related(client: Client, run: Run, links: Links) -> list[tuple[str, Markup]]:
    """What the run reproduces, and the runs that reproduced it (pinned to the same code)."""
    rows = []
    if run.reproduces:
        try:
            original = client.get_pipeline_run(run.reproduces)
            rows.append(("reproduces", link(links.run(original.sha), original.name)))
        except MlopsLiteError:
            rows.append(("reproduces", tag("span", {"class": "mono"}, run.reproduces)))
    reruns = [
        other
        for other in client.runs_for_code_commit(run.code_commit)
        if other.sha != run.sha and other.status != "unreadable" and other.reproduces == run.sha
    ]
    if reruns:
        rows.append(("reproduced by", join([link(links.run(o.sha), o.name) for o in reruns], ", ")))
    return rows


def _model_version(run: Run, links: Links) -> Markup | None:
    """The model version the run worked on, linked to its part of the model's page."""
    version = run.model_version
    if version is None:
        return None
    text = f"{version.model_name} version {version.name}"
    return join(
        [
            link(links.model(version.model_name, version.name), text),
            f" ({version.stage})" if version.stage else "",
        ]
    )


def _cached_from(client: Client, step: StepRun, links: Links) -> Markup | str:
    """The run a cache hit reused, linked when it can be found here."""
    source = step.cached_from
    if not step.cached or not source:
        return ""
    text = f"from {source.get('pipeline', '?')}/{source.get('run', '?')}"
    try:
        found = client.get_pipeline_run(f"{source.get('pipeline')}/{source.get('run')}")
    except MlopsLiteError:
        return text
    return link(links.run(found.sha), text)


def _steps_table(client: Client, run: Run, links: Links) -> Markup:
    steps = list(run.steps.values())
    longest = max((s.duration or 0 for s in steps), default=0) or 1
    rows = []
    for step in steps:
        width = 100 * (step.duration or 0) / longest
        rows.append(
            tag(
                "tr",
                {"data-step": step.name},
                tag("td", None, link(links.step(run.sha, step.name), step.name)),
                tag("td", None, status_badge("cached" if step.cached else step.status)),
                tag("td", {"class": "muted"}, _cached_from(client, step, links)),
                tag("td", {"class": "num"}, duration(step.duration)),
                tag(
                    "td",
                    {"style": "width:22%"},
                    tag(
                        "div",
                        {
                            "class": "timing",
                            "style": f"background:#8fb3ff;height:8px;width:{width:.1f}%",
                            "title": duration(step.duration),
                        },
                    ),
                ),
                tag(
                    "td",
                    None,
                    join(
                        [
                            join(
                                [
                                    link(links.output(run.sha, step.name, name), name),
                                    _version_note(artifact, links),
                                ]
                            )
                            for name, artifact in step.outputs.items()
                        ],
                        ", ",
                    ),
                ),
            )
        )
    return tag(
        "table",
        {"class": "steps"},
        tag(
            "thead",
            None,
            tag(
                "tr",
                None,
                [
                    tag("th", None, h)
                    for h in ("Step", "Status", "Cache", "Duration", "", "Outputs")
                ],
            ),
        ),
        tag("tbody", None, rows),
    )


def _version_note(artifact: Artifact, links: Links) -> Markup | str:
    version = named_version(artifact, links)
    return join([" (", version, ")"]) if version is not None else ""


def _step_errors(run: Run, links: Links) -> Markup | str:
    """The last line of each failed step's traceback: what went wrong, at a glance."""
    failed = [step for step in run.steps.values() if step.error]
    if not failed:
        return ""
    return tag(
        "ul",
        {"class": "error step-errors"},
        [
            tag(
                "li",
                None,
                link(links.step(run.sha, step.name), step.name),
                ": ",
                (step.error or "").strip().splitlines()[-1] if (step.error or "").strip() else "",
            )
            for step in failed
        ],
    )


def run_page(client: Client, links: Links, run: Run) -> Page:
    """Everything about one run."""
    if run.status == "unreadable":
        try:
            run.record  # noqa: B018 - reading it raises the reason
            reason = "unknown"
        except MlopsLiteError as error:
            reason = str(error)
        body = join(
            [
                tag("h1", None, f"{run.pipeline_name} / {run.name}"),
                tag("p", {"class": "error"}, f"This run cannot be read here: {reason}"),
            ]
        )
        return Page(run.name, body)
    code = run.code
    dirty = " (dirty work tree: a snapshot commit)" if code.get("dirty") else " (clean work tree)"
    author = run.author
    summary = facts(
        [
            ("status", status_badge(run.status)),
            ("pipeline", link(links.runs({"pipeline": run.pipeline_name}), run.pipeline_name)),
            ("sha", tag("span", {"class": "mono"}, run.sha)),
            ("code commit", join([tag("span", {"class": "mono"}, run.code_commit), dirty])),
            ("branch", code.get("branch") or None),
            ("base commit", code.get("base_commit") if code.get("dirty") else None),
            ("started", timestamp(run.start_time)),
            ("ended", timestamp(run.end_time) if run.end_time else None),
            ("duration", duration(run.duration)),
            ("by", f"{author.get('name', '?')} <{author.get('email', '?')}> on {run.host or '?'}"),
            ("executed on", run.orchestrator + (f" (stack {run.stack})" if run.stack else "")),
            ("caching", "on" if run.record.enable_cache else "off"),
            ("model", _model_version(run, links)),
            *_related(client, run, links),
        ]
    )
    compare = links.compare([run.sha])
    parts = [
        tag("h1", None, f"{run.pipeline_name} / {run.name}"),
        tag("pre", {"class": "error run-error"}, run.error) if run.error else "",
        _step_errors(run, links),
        tag("div", {"class": "grid"}, tag("div", {"class": "card"}, summary)),
        tag("h2", None, "Steps"),
        run_graph(run, links),
        _steps_table(client, run, links)
        if run.steps
        else tag("p", {"class": "muted"}, "No step recorded yet."),
        tag("h2", None, "Parameters"),
        json_block(run.parameters) if run.parameters else tag("p", {"class": "muted"}, "none"),
        tag("h2", None, "Metadata"),
        json_block(run.metadata) if run.metadata else tag("p", {"class": "muted"}, "none"),
    ]
    if run.config:
        parts += [tag("h2", None, "Configuration"), json_block(run.config)]
    parts += [
        tag("h2", None, "Environment"),
        json_block(run.environment),
        tag("h2", None, "Entry point"),
        json_block(run.record.entry_point),
    ]
    if compare is not None:
        parts.append(tag("p", None, link(compare, "compare with other runs…")))
    running = run.status == "running"
    # Followed by name: a running run's sha changes when it ends.
    stable = f"{run.pipeline_name}/{run.name}"
    return Page(
        run.name,
        join(parts),
        live=running,
        watch=stable if running else None,
        reload=links.run(stable) if running else None,
    )
