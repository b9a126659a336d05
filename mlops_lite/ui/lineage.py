"""Lineage graphs: an artifact ← the step that made it ← its inputs … ← the code commit.

Inputs are followed within the run (another step's output) and across runs (a
named artifact version passed in the pipeline body, made by an earlier run), up
to ``MAX_LINEAGE_NODES`` boxes: a long chain of retrainings stays a readable page.
"""

from __future__ import annotations

from typing import Final

from mlops_lite.client import Client, Run
from mlops_lite.errors import MlopsLiteError
from mlops_lite.ui.dag import Node, draw_graph
from mlops_lite.ui.html import Markup
from mlops_lite.ui.links import Links

__all__ = ["MAX_LINEAGE_NODES", "lineage_graph"]

MAX_LINEAGE_NODES: Final = 60
"""Boxes in one lineage graph at most; what lies further back is one "more" box."""


class _Lineage:
    def __init__(self, client: Client | None, origin: Run, links: Links) -> None:
        self.client = client
        self.origin = origin
        self.links = links
        self.nodes: dict[str, Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.cut = False

    def id(self, run: Run, local: str) -> str:
        # The origin run's boxes keep their plain names; earlier runs' are prefixed.
        return local if run.sha == self.origin.sha else f"{run.sha[:10]}/{local}"

    def add(self, node: Node) -> bool:
        """Add ``node`` unless the graph is full; whether it is (now) in the graph."""
        if node.id in self.nodes:
            return True
        if len(self.nodes) >= MAX_LINEAGE_NODES:
            self.cut = True
            return False
        self.nodes[node.id] = node
        return True

    def code(self, run: Run) -> str:
        node_id = self.id(run, "code")
        dirty = " (dirty)" if run.code.get("dirty") else ""
        detail = f"{run.code_commit[:10]}{dirty}"
        title = f"code commit {run.code_commit} of run {run.pipeline_name}/{run.name}"
        self.add(Node(node_id, "code", detail, "code", None, title))
        return node_id

    def producer(self, pipeline: str | None, run_name: str | None) -> Run | None:
        if self.client is None or not (pipeline and run_name):
            return None
        try:
            return self.client.get_pipeline_run(f"{pipeline}/{run_name}")
        except MlopsLiteError:
            return None  # not in this clone (or unreadable): the version's box ends the chain

    def follow(self, start: tuple[Run, str]) -> None:
        pending = [start]
        done: set[str] = set()
        while pending:
            run, name = pending.pop()
            node_id = self.id(run, name)
            step = run.steps.get(name)
            if step is None or node_id in done:
                continue
            done.add(node_id)
            state = "cached" if step.cached else step.status
            if not self.add(Node(node_id, name, state, state, self.links.step(run.sha, name))):
                continue
            if not step.inputs:
                self.edges.append((self.code(run), node_id))
            for artifact in step.inputs.values():
                local = f"{artifact.step_name}.{artifact.name}"
                artifact_node = Node(
                    self.id(run, local),
                    artifact.name,
                    artifact.type_name.rpartition(".")[2],
                    "artifact",
                    self.links.output(run.sha, artifact.step_name, artifact.name),
                    f"{local}: {artifact.type_name}, {artifact.size:,} bytes",
                )
                if self.add(artifact_node):
                    self.edges += [
                        (self.id(run, artifact.step_name), artifact_node.id),
                        (artifact_node.id, node_id),
                    ]
                    pending.append((run, artifact.step_name))
            for version in step.input_versions.values():
                label = f"{version.name}:{version.version}"
                version_node = Node(
                    f"version/{version.id}",
                    label,
                    version.data_type.rpartition(".")[2],
                    "artifact",
                    self.links.artifact_version(version.name, version.version),
                    f"artifact {label}: {version.data_type}, {version.size:,} bytes",
                )
                if not self.add(version_node):
                    continue
                self.edges.append((version_node.id, node_id))
                made_by = self.producer(version.producer_pipeline_name, version.producer_run_name)
                step_name = version.producer_step_name
                if made_by is not None and step_name:
                    self.edges.append((self.id(made_by, step_name), version_node.id))
                    pending.append((made_by, step_name))


def lineage_graph(
    client: Client | None,
    run: Run,
    step_name: str,
    output: str,
    links: Links,
    *,
    label: str | None = None,
    href: str | None = None,
) -> Markup:
    """The lineage of output ``output`` of step ``step_name`` of ``run``, as an SVG graph.

    ``label`` names the output's box (a named version's ``name:version``);
    without ``client`` only the run's own steps are followed.
    """
    lineage = _Lineage(client, run, links)
    target = f"{step_name}.{output}"
    lineage.follow((run, step_name))
    nodes = dict(lineage.nodes)
    nodes[target] = Node(target, label or output, "this output", "artifact", href, target)
    edges = [*lineage.edges, (step_name, target)]
    if lineage.cut:
        nodes["more"] = Node(
            "more", "…", f"more than {MAX_LINEAGE_NODES} boxes", "skipped", None, "lineage cut"
        )
    # Code first, so its boxes sit at the top of their column.
    ordered = sorted(nodes.values(), key=lambda node: node.state != "code")
    return draw_graph(ordered, edges, label=f"lineage of {label or target}")
