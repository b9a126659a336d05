"""Named artifacts: every artifact with its versions, and one version with its lineage."""

from __future__ import annotations

from typing import Final

from mlops_lite.client import ArtifactVersion, Client, RegisteredArtifact, Run
from mlops_lite.client.previews import preview_artifact_version
from mlops_lite.errors import MlopsLiteError
from mlops_lite.ui.html import Markup, join, tag
from mlops_lite.ui.lineage import lineage_graph
from mlops_lite.ui.links import Links
from mlops_lite.ui.models_page import run_link
from mlops_lite.ui.widgets import (
    Page,
    facts,
    json_block,
    link,
    render_preview,
    table,
    timestamp,
)

__all__ = ["MAX_LISTED_VERSIONS", "artifact_version_page", "artifacts_page"]

MAX_LISTED_VERSIONS: Final = 30
"""Versions linked per artifact on the list, newest first; the rest are counted."""


_HEADERS: Final = (
    "Artifact", "Versions", "Newest first", "Data type", "Kind", "Latest created", "Tags",
)  # fmt: skip


def artifacts_page(links: Links, artifacts: list[RegisteredArtifact]) -> Page:
    """Every named artifact: its newest versions, their tags and type."""
    rows = []
    for artifact in artifacts:
        versions = list(artifact.versions.values())
        latest = versions[-1] if versions else None
        shown = versions[::-1][:MAX_LISTED_VERSIONS]
        more = len(versions) - len(shown)
        rows.append(
            tag(
                "tr",
                {"data-artifact": artifact.name},
                tag("td", None, artifact.name),
                tag("td", {"class": "num"}, len(versions)),
                tag(
                    "td",
                    None,
                    join(
                        [link(links.artifact_version(v.name, v.version), v.version) for v in shown],
                        ", ",
                    ),
                    f", … {more} older" if more else "",
                ),
                tag("td", {"class": "mono"}, latest.data_type if latest else ""),
                tag("td", None, latest.type if latest else ""),
                tag("td", {"class": "when"}, timestamp(latest.created) if latest else ""),
                tag("td", None, ", ".join(artifact.tags)),
            )
        )
    body = join(
        [
            tag("h1", None, "Artifacts"),
            table(_HEADERS, rows, "artifact-versions")
            if rows
            else tag(
                "p",
                {"class": "notice"},
                "No named artifact yet: name a step output with Annotated[T, 'name'] "
                "or ArtifactConfig(name=...) to version it.",
            ),
        ]
    )
    return Page("Artifacts", body, "artifacts")


def _producer(client: Client, version: ArtifactVersion) -> Run | None:
    """The run that made ``version``, when it is recorded (and readable) here."""
    pipeline, run_name = version.producer_pipeline_name, version.producer_run_name
    if not (pipeline and run_name):
        return None
    try:
        run = client.get_pipeline_run(f"{pipeline}/{run_name}")
        return run if version.producer_step_name in run.steps else None
    except MlopsLiteError:
        return None


def _lineage(client: Client, links: Links, version: ArtifactVersion, run: Run | None) -> Markup:
    step, output = version.producer_step_name, version.producer_output_name
    if version.producer_run_name is None or not (step and output):
        return tag("p", {"class": "muted"}, "saved outside a run: no step made it")
    if run is None:
        return tag(
            "p",
            {"class": "muted"},
            f"made by step {step} of run {version.producer_pipeline_name}/"
            f"{version.producer_run_name}, which cannot be read in this clone "
            "(`mlops-lite pull` brings a teammate's runs)",
        )
    label = f"{version.name}:{version.version}"
    return lineage_graph(client, run, step, output, links, label=label)


def _models(client: Client, links: Links, version: ArtifactVersion) -> list[Markup]:
    """The model versions ``version`` is linked to, each linked to its part of the model page."""
    found = []
    for model_link in version.model_links:
        model = model_link["model"]
        try:
            name = client.get_model_version(model, model_link["version_id"]).name
        except (MlopsLiteError, LookupError, ValueError):
            found.append(join([model, f" ({model_link['kind']} artifact)"]))
            continue
        found.append(
            join(
                [
                    link(links.model(model, name), f"{model} version {name}"),
                    f" ({model_link['kind']} artifact)",
                ]
            )
        )
    return found


def artifact_version_page(client: Client, links: Links, version: ArtifactVersion) -> Page:
    """One named artifact version: what it is, who made it from what, and a preview."""
    step = version.producer_step_name
    producer = _producer(client, version)
    run_name = (
        f"{version.producer_pipeline_name}/{version.producer_run_name}"
        if version.producer_run_name
        else None
    )
    models = _models(client, links, version)
    others = list(version.artifact.versions.values())[::-1][:MAX_LISTED_VERSIONS]
    number = f" (#{version.number})" if version.version != str(version.number) else ""
    summary = facts(
        [
            ("version", f"{version.version}{number}"),
            ("tags", ", ".join(version.tags) or None),
            ("kind", version.type),
            ("data type", tag("span", {"class": "mono"}, version.data_type)),
            ("size", f"{version.size:,} bytes"),
            ("materializer", version.materializer),
            ("pickled", "yes: loading it runs code" if version.uses_pickle else None),
            ("created", f"{timestamp(version.created)} by {version.author or 'unknown'}"),
            ("made by run", run_link(client, links, run_name)),
            ("step", link(links.step(producer.sha, step), step) if producer and step else step),
            ("models", join(models, ", ") if models else None),
            ("artifact id", tag("span", {"class": "mono"}, version.artifact_id)),
            ("version id", tag("span", {"class": "mono"}, str(version.id))),
        ]
    )
    body = join(
        [
            tag("h1", None, f"{version.name}:{version.version}"),
            tag("div", {"class": "card"}, summary),
            tag("h2", None, "Lineage"),
            _lineage(client, links, version, producer),
            tag("h2", None, "Metadata"),
            json_block(version.run_metadata)
            if version.run_metadata
            else tag("p", {"class": "muted"}, "none"),
            tag("h2", None, "Preview"),
            render_preview(preview_artifact_version(version), name=version.name),
            tag("h2", None, f"Versions of {version.name}"),
            tag(
                "p",
                None,
                join(
                    [
                        link(links.artifact_version(v.name, v.version), v.version)
                        if v != version
                        else tag("strong", None, v.version)
                        for v in others
                    ],
                    ", ",
                ),
            ),
        ]
    )
    return Page(f"{version.name}:{version.version}", body, "artifacts")
