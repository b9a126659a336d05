"""Where each page lives: paths on the local server, or files of a static report."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol
from urllib.parse import quote, urlencode

__all__ = ["Links", "ReportLinks", "ServerLinks", "version_anchor"]


class Links(Protocol):
    """The address of every page; None where the page does not exist (not in a report)."""

    live: bool
    """Whether pages can ask for fresher data (a server) or are files (a report)."""

    def runs(self, query: Mapping[str, str | Sequence[str]] | None = None) -> str | None:
        """The runs listing, with filters in ``query``."""

    def run(self, sha: str) -> str | None:
        """One run."""

    def step(self, sha: str, step: str) -> str | None:
        """One step of a run."""

    def output(self, sha: str, step: str, output: str) -> str | None:
        """One output of a step, with its preview and lineage."""

    def logs(self, sha: str, step: str) -> str | None:
        """A step's logs as plain text (for following a running step)."""

    def compare(self, shas: Sequence[str], query: Mapping[str, str] | None = None) -> str | None:
        """Runs side by side."""

    def pipelines(self) -> str | None:
        """Pipelines and their latest outputs."""

    def models(self) -> str | None:
        """Every model, with its versions per stage."""

    def model(self, name: str, version: str | None = None) -> str | None:
        """A model's page; with ``version``, that version's part of it."""

    def artifacts(self) -> str | None:
        """Every named artifact, with its versions."""

    def artifact_version(self, name: str, version: str) -> str | None:
        """One version of a named artifact: its preview, producer and lineage."""

    def changes(self, run: str | None = None) -> str | None:
        """A token that changes when runs arrive or finish (and ``run``'s steps progress)."""


def _segment(text: str) -> str:
    return quote(text, safe="")


def version_anchor(version: str) -> str:
    """The id of a model version's part of its model's page (safe in a URL fragment)."""
    return "version-" + quote(version, safe="")


class ServerLinks:
    """Paths served by ``mlops-lite ui``."""

    live = True

    def runs(self, query: Mapping[str, str | Sequence[str]] | None = None) -> str:
        """``/`` and its query."""
        return "/" + (f"?{urlencode(query, doseq=True)}" if query else "")

    def run(self, sha: str) -> str:
        """``/runs/<sha>``."""
        return f"/runs/{_segment(sha)}"

    def step(self, sha: str, step: str) -> str:
        """``/runs/<sha>/steps/<step>``."""
        return f"{self.run(sha)}/steps/{_segment(step)}"

    def output(self, sha: str, step: str, output: str) -> str:
        """``/runs/<sha>/steps/<step>/outputs/<output>``."""
        return f"{self.step(sha, step)}/outputs/{_segment(output)}"

    def logs(self, sha: str, step: str) -> str:
        """``/runs/<sha>/steps/<step>/logs.txt``."""
        return f"{self.step(sha, step)}/logs.txt"

    def compare(self, shas: Sequence[str], query: Mapping[str, str] | None = None) -> str:
        """``/compare?run=...``."""
        return "/compare?" + urlencode([*(("run", sha) for sha in shas), *(query or {}).items()])

    def pipelines(self) -> str:
        """``/pipelines``."""
        return "/pipelines"

    def models(self) -> str:
        """``/models``."""
        return "/models"

    def model(self, name: str, version: str | None = None) -> str:
        """``/models/<name>``, ``#version-<version>``."""
        anchor = f"#{version_anchor(version)}" if version is not None else ""
        return f"/models/{_segment(name)}{anchor}"

    def artifacts(self) -> str:
        """``/artifacts``."""
        return "/artifacts"

    def artifact_version(self, name: str, version: str) -> str:
        """``/artifacts/<name>/versions/<version>``."""
        return f"/artifacts/{_segment(name)}/versions/{_segment(version)}"

    def changes(self, run: str | None = None) -> str:
        """``/api/changes``, ``?run=<sha>`` for a page that follows a running run."""
        return "/api/changes" + (f"?{urlencode({'run': run})}" if run else "")


class ReportLinks:
    """Files of a static report, all in one folder, linking to each other by relative name."""

    live = False

    def __init__(
        self,
        shas: Iterable[str],
        *,
        compare: bool,
        models: Iterable[str] = (),
        artifact_versions: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._shas = set(shas)
        self._compare = compare
        self._models = set(models)
        self._artifact_versions = set(artifact_versions)

    @staticmethod
    def file(*parts: str) -> str:
        """The file name of a page: parts joined by ``-``, each safe in any file system."""
        name = "-".join(quote(part, safe="").replace("%", "_") for part in parts)
        if len(name) > 200:  # file systems stop at 255 bytes
            name = f"{parts[0]}-{hashlib.sha256(name.encode()).hexdigest()[:32]}"
        return name + ".html"

    def runs(self, query: Mapping[str, str | Sequence[str]] | None = None) -> str | None:
        """``index.html``; a filtered listing does not exist in a report."""
        return None if query else "index.html"

    def run(self, sha: str) -> str | None:
        """``run-<sha>.html`` for the runs in the report."""
        return self.file("run", sha) if sha in self._shas else None

    def step(self, sha: str, step: str) -> str | None:
        """``step-<sha>-<step>.html``."""
        return self.file("step", sha, step) if sha in self._shas else None

    def output(self, sha: str, step: str, output: str) -> str | None:
        """``output-<sha>-<step>-<output>.html``."""
        return self.file("output", sha, step, output) if sha in self._shas else None

    def logs(self, sha: str, step: str) -> None:
        """Logs are on the step's page."""
        return None

    def compare(self, shas: Sequence[str], query: Mapping[str, str] | None = None) -> str | None:
        """``compare.html``: the report's runs, only."""
        return "compare.html" if self._compare and not query else None

    def pipelines(self) -> str:
        """``pipelines.html``."""
        return "pipelines.html"

    def models(self) -> str | None:
        """``models.html``, when the report has models."""
        return "models.html" if self._models else None

    def model(self, name: str, version: str | None = None) -> str | None:
        """``model-<name>.html`` for the models of the report's runs."""
        if name not in self._models:
            return None
        anchor = f"#{version_anchor(version)}" if version is not None else ""
        return self.file("model", name) + anchor

    def artifacts(self) -> str | None:
        """``artifacts.html``, when the report's runs made named artifact versions."""
        return "artifacts.html" if self._artifact_versions else None

    def artifact_version(self, name: str, version: str) -> str | None:
        """``artifact-<name>-<version>.html`` for the versions the report's runs made."""
        if (name, version) not in self._artifact_versions:
            return None
        return self.file("artifact", name, version)

    def changes(self, run: str | None = None) -> None:
        """A report never changes."""
        return None
