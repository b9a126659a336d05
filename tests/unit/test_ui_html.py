"""The dashboard's HTML pieces: escaping, the DAG layout, report file names, query parsing."""

from __future__ import annotations

import re

from mlops_lite.core.columns import Column
from mlops_lite.ui.dag import Node, draw_graph
from mlops_lite.ui.html import Markup, escape, join, tag
from mlops_lite.ui.links import ReportLinks, ServerLinks
from mlops_lite.ui.runs_page import RunsQuery


def test_text_is_escaped_and_markup_is_not_escaped_twice() -> None:
    hostile = '<script>alert("1")</script>'
    rendered = tag("td", {"title": hostile, "class_": "x", "hidden": True, "alt": None}, hostile)
    assert rendered == (
        '<td title="&lt;script&gt;alert(&quot;1&quot;)&lt;/script&gt;" class="x" hidden>'
        "&lt;script&gt;alert(&quot;1&quot;)&lt;/script&gt;</td>"
    )
    assert escape(rendered) is rendered
    assert join(["<a>", Markup("<b>")], ", ") == "&lt;a&gt;, <b>"
    assert tag("img", {"src": "data:x"}) == '<img src="data:x">'


def test_a_graph_places_each_step_after_its_inputs() -> None:
    nodes = [Node(n, n, state="completed") for n in ("load", "split", "train", "report")]
    edges = [("load", "split"), ("split", "train"), ("load", "train"), ("train", "report")]
    svg = draw_graph(nodes, edges, label="steps")
    xs = {
        name: float(x)
        for name, x in re.findall(r'data-node="(\w+)"><title>.*?</title><rect x="(\d+)"', svg)
    }
    assert xs["load"] < xs["split"] < xs["train"] < xs["report"]
    assert svg.count('class="edge"') == 4


def test_a_cycle_or_an_unknown_node_does_not_break_the_layout() -> None:
    svg = draw_graph(
        [Node("a", "a"), Node("b", "b")], [("a", "b"), ("b", "a"), ("a", "zz")], label="x"
    )
    assert svg.count("<rect") == 2


def test_links_quote_names_and_reports_link_only_what_they_hold() -> None:
    assert ServerLinks().step("abc", "a/b") == "/runs/abc/steps/a%2Fb"
    report = ReportLinks(["abc"], compare=False)
    assert report.run("abc") == "run-abc.html" and report.run("other") is None
    assert report.compare(["abc"]) is None and report.changes() is None
    assert len(report.file("output", "abc", "s" * 300)) < 100


def test_a_runs_query_reads_back_what_it_writes_and_reports_bad_columns() -> None:
    query = RunsQuery.parse(
        {"pipeline": ["p"], "sort": ["metric:acc"], "order": ["asc"], "page": ["3"],
         "columns": ["1"], "col": ["param:lr", "metric:acc"]}
    )  # fmt: skip
    assert query.columns == [Column("param", "lr"), Column("metric", "acc")]
    assert query.to_query(page=None)["col"] == ["param:lr", "metric:acc"]
    assert RunsQuery.parse({"col": ["nonsense"]}).error is not None
    assert RunsQuery.parse({"page": ["x"]}).page == 1
