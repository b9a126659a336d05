"""Models: every model with its versions per stage, and a model's versions and stage history."""

from __future__ import annotations

import uuid
from typing import Final

from mlops_lite.client import ArtifactVersion, Client, ModelVersion, RegisteredModel
from mlops_lite.errors import MlopsLiteError
from mlops_lite.ui.html import Markup, join, tag
from mlops_lite.ui.links import Links, version_anchor
from mlops_lite.ui.widgets import Page, facts, json_block, link, table, timestamp

__all__ = ["Linked", "model_page", "models_page", "run_link", "stage_badge"]

_STAGES: Final = ("production", "staging", "archived", "none")
_KINDS: Final = ("model", "data", "deployment")
Linked = tuple[str, ArtifactVersion]
"""How an artifact version is linked to a model version (its kind), and the version."""
_CARD: Final = ("description", "license", "audience", "use_cases", "limitations", "trade_offs",
                "ethics")  # fmt: skip


def stage_badge(stage: str | None) -> Markup:
    """A model version's stage as a coloured label (``none`` when it has none)."""
    return tag("span", {"class": f"status stage-{stage or 'none'}"}, stage or "none")


def run_link(client: Client, links: Links, run_name: str | None) -> Markup | str:
    """``pipeline/run`` linked to its run page when the run is recorded here."""
    if not run_name:
        return tag("span", {"class": "muted"}, "outside a run")
    try:
        run = client.get_pipeline_run(run_name)
    except MlopsLiteError:
        return tag("span", {"class": "mono"}, run_name)
    return link(links.run(run.sha), run_name, class_="mono")


def models_page(client: Client, links: Links, models: list[RegisteredModel]) -> Page:
    """Every model: its latest version and how many versions each stage has."""
    rows = []
    for model in models:
        versions = model.versions
        per_stage = {stage: 0 for stage in _STAGES}
        for version in versions:
            per_stage[version.stage or "none"] += 1
        latest = versions[-1] if versions else None
        rows.append(
            tag(
                "tr",
                {"data-model": model.name},
                tag("td", None, link(links.model(model.name), model.name)),
                tag(
                    "td",
                    None,
                    link(links.model(model.name, latest.name), latest.name) if latest else "-",
                    " ",
                    stage_badge(latest.stage) if latest else "",
                ),
                tag("td", {"class": "num"}, len(versions)),
                [tag("td", {"class": "num"}, per_stage[stage] or "") for stage in _STAGES],
                tag("td", None, ", ".join(model.tags)),
            )
        )
    body = join(
        [
            tag("h1", None, "Models"),
            table(["Model", "Latest", "Versions", *_STAGES, "Tags"], rows, "models")
            if rows
            else tag(
                "p",
                {"class": "notice"},
                "No model yet: a run of @pipeline(model=Model(name=...)) creates one.",
            ),
        ]
    )
    return Page("Models", body, "models")


def _links_by_version(client: Client, model: str) -> dict[uuid.UUID, list[Linked]]:
    """The artifact versions linked to each version of ``model``, reading each registry once."""
    found: dict[uuid.UUID, list[Linked]] = {}
    for version in client.list_artifact_versions():
        for model_link in version.model_links:
            if model_link["model"] == model:
                key = uuid.UUID(model_link["version_id"])
                found.setdefault(key, []).append((model_link["kind"], version))
    return found


def _kind_order(kind: str) -> int:
    return _KINDS.index(kind) if kind in _KINDS else len(_KINDS)


def _linked_artifacts(linked: list[Linked], links: Links) -> Markup:
    rows = [
        tag(
            "tr",
            {"data-artifact": version.name},
            tag("td", None, kind),
            tag(
                "td",
                None,
                link(
                    links.artifact_version(version.name, version.version),
                    f"{version.name}:{version.version}",
                ),
            ),
            tag("td", {"class": "mono"}, version.data_type),
        )
        for kind, version in sorted(linked, key=lambda item: _kind_order(item[0]))
    ]
    if not rows:
        return tag("p", {"class": "muted"}, "no artifacts linked")
    return table(["Kind", "Artifact version", "Data type"], rows, "linked-artifacts")


def _version_section(
    client: Client, links: Links, version: ModelVersion, linked: list[Linked]
) -> Markup:
    runs = version.run_names
    number = f" (#{version.number})" if version.name != str(version.number) else ""
    return tag(
        "section",
        {
            "class": "card model-version",
            "id": version_anchor(version.name),
            "data-version": version.name,
        },
        tag("h3", None, f"version {version.name}{number} ", stage_badge(version.stage)),
        facts(
            [
                ("created", f"{timestamp(version.created)} by {version.author or 'unknown'}"),
                ("by run", run_link(client, links, runs[0]) if runs else None),
                (
                    "later runs",
                    join([run_link(client, links, name) for name in runs[1:]], ", ")
                    if len(runs) > 1
                    else None,
                ),
                ("id", tag("span", {"class": "mono"}, str(version.id))),
            ]
        ),
        tag("h4", None, "Metadata"),
        json_block(version.run_metadata)
        if version.run_metadata
        else tag("p", {"class": "muted"}, "none"),
        tag("h4", None, "Linked artifacts"),
        _linked_artifacts(linked, links),
    )


def _history(client: Client, links: Links, model: RegisteredModel) -> Markup:
    rows = [
        tag(
            "tr",
            {"class": None if change["applied"] else "muted"},
            tag("td", {"class": "when"}, timestamp(change["time"])),
            tag("td", None, link(links.model(model.name, change["version"]), change["version"])),
            tag("td", None, change["archived"] or ""),
            tag("td", None, stage_badge(change["stage"])),
            tag("td", None, change["author"] or "unknown"),
            tag("td", None, run_link(client, links, change["run"])),
            tag(
                "td",
                None,
                "applied" if change["applied"] else f"not applied: {change['reason'] or '?'}",
                " (forced)" if change["force"] else "",
            ),
        )
        for change in reversed(model.stage_history)
    ]
    if not rows:
        return tag("p", {"class": "muted"}, "no stage was ever set")
    return table(
        ["When", "Version", "Displaced", "To stage", "Who", "From run", ""], rows, "stage-history"
    )


def model_page(client: Client, links: Links, model: RegisteredModel) -> Page:
    """One model: its card, versions (newest first) and stage history."""
    card = [(field.replace("_", " "), getattr(model, field)) for field in _CARD]
    stages = model.stages
    summary = facts(
        [
            *((label, value) for label, value in card if value),
            ("tags", ", ".join(model.tags) or None),
            (
                "stages",
                join(
                    [
                        join([stage_badge(stage), " ", link(links.model(model.name, v), v)])
                        for stage, v in stages.items()
                    ],
                    " ",
                )
                if stages
                else "none held",
            ),
        ]
    )
    versions = model.versions
    linked = _links_by_version(client, model.name)
    body = join(
        [
            tag("h1", None, f"Model {model.name}"),
            tag("div", {"class": "card"}, summary),
            tag("h2", None, "Stage history"),
            _history(client, links, model),
            tag("h2", None, f"Versions ({len(versions)})"),
            join(
                [
                    _version_section(client, links, v, linked.get(v.id, []))
                    for v in reversed(versions)
                ]
            ),
        ]
    )
    return Page(f"Model {model.name}", body, "models")
