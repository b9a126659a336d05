"""Requests to pages: the dashboard's routes, read-only, over one repository.

A request path never names a file: it names a run (by sha, name or prefix), a
step and an output, which are looked up through the ``Client``. Nothing outside
the repository's recorded runs can be reached, and nothing is ever written.
"""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from mlops_lite.client import Client
from mlops_lite.errors import MlopsLiteError, NotFoundError
from mlops_lite.ui.artifacts_page import artifact_version_page, artifacts_page
from mlops_lite.ui.compare_page import compare_page
from mlops_lite.ui.html import join, tag
from mlops_lite.ui.layout import CONTENT_SECURITY_POLICY, render_page
from mlops_lite.ui.links import ServerLinks
from mlops_lite.ui.models_page import model_page, models_page
from mlops_lite.ui.pipelines_page import pipelines_page
from mlops_lite.ui.run_page import run_page
from mlops_lite.ui.runs_page import RunsQuery, runs_page
from mlops_lite.ui.step_page import output_page, step_page
from mlops_lite.ui.widgets import Page

__all__ = ["MAX_COMPARED_RUNS", "Dashboard", "Response", "changes_token"]

MAX_COMPARED_RUNS: Final = 50

_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


@dataclass
class Response:
    """What a request gets back."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=lambda: dict(_HEADERS))


class Dashboard:
    """The dashboard of the repository at ``root``: ``handle(path)`` gives a page."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.links = ServerLinks()

    def handle(self, target: str) -> Response:
        """The response to ``GET target`` (a path with its query string)."""
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        try:
            with Client(self.root) as client:
                return self._route(client, segments, query)
        except NotFoundError as error:
            return self._page(Page("Not found", tag("p", {"class": "error"}, str(error))), 404)
        except MlopsLiteError as error:
            return self._page(Page("Error", tag("p", {"class": "error"}, str(error))), 500)
        except Exception:
            traceback.print_exc()
            message = (
                "The dashboard failed on this page; its traceback is in the terminal running it."
            )
            return self._page(Page("Error", tag("p", {"class": "error"}, message)), 500)

    def _route(
        self, client: Client, segments: list[str], query: Mapping[str, Sequence[str]]
    ) -> Response:
        links = self.links
        match segments:
            case []:
                return self._page(runs_page(client, links, RunsQuery.parse(query)), client=client)
            case ["runs", run]:
                return self._page(
                    run_page(client, links, client.get_pipeline_run(run)), client=client
                )
            case ["runs", run, "steps", step]:
                found = client.get_pipeline_run(run).get_step(step)
                return self._page(step_page(links, found), client=client)
            case ["runs", run, "steps", step, "logs.txt"]:
                found = client.get_pipeline_run(run).get_step(step)
                return Response(200, found.logs.encode(), "text/plain; charset=utf-8")
            case ["runs", run, "steps", step, "outputs", output]:
                found = client.get_pipeline_run(run).get_step(step)
                if output not in found.outputs:
                    known = ", ".join(found.outputs) or "none"
                    raise NotFoundError(
                        f"step {step!r} has no output {output!r} (outputs: {known})"
                    )
                page = output_page(client, links, found, output, found.outputs[output])
                return self._page(page)
            case ["compare"]:
                names = list(dict.fromkeys(query.get("run", [])))[:MAX_COMPARED_RUNS]
                table = client.compare_runs(names)
                return self._page(compare_page(table, links, query))
            case ["pipelines"]:
                return self._page(pipelines_page(client, links))
            case ["models"]:
                return self._page(models_page(client, links, client.list_models()))
            case ["models", model]:
                return self._page(model_page(client, links, client.get_model(model)))
            case ["artifacts"]:
                return self._page(artifacts_page(links, client.list_artifacts()))
            case ["artifacts", artifact, "versions", version]:
                found_version = client.get_artifact_version(artifact, version)
                return self._page(artifact_version_page(client, links, found_version))
            case ["api", "changes"]:
                watched = query.get("run") or [""]
                token = changes_token(client, watched[-1] or None)
                return Response(200, token.encode(), "text/plain; charset=utf-8")
        return self._page(
            Page(
                "Not found",
                join([tag("h1", None, "Not found"), tag("p", None, "There is no page here.")]),
            ),
            404,
        )

    def _page(self, page: Page, status: int = 200, *, client: Client | None = None) -> Response:
        token = changes_token(client, page.watch) if page.live and client is not None else None
        html = render_page(
            page.title,
            page.body,
            links=self.links,
            section=page.section,
            project=self.root,
            token=token,
            watch=page.watch,
            reload=page.reload,
        )
        return Response(status, html.encode())


def changes_token(client: Client, watch: str | None = None) -> str:
    """Changes when a run is recorded, arrives by pull, or finishes: what live pages poll.

    With ``watch`` (a running run's ``pipeline/run``), also when one of its steps
    starts or ends.
    """
    newest = client.find_runs(limit=1)
    running = client.find_runs(status="running", limit=None).runs
    state = [str(newest.total), *(run.sha for run in newest.runs), *sorted(r.sha for r in running)]
    if watch:
        try:
            run = client.get_pipeline_run(watch)
            state += [run.sha, run.status, *(f"{s.name}:{s.status}" for s in run.steps.values())]
        except MlopsLiteError as error:
            state.append(str(error))
    return hashlib.sha256(" ".join(state).encode()).hexdigest()[:16]
