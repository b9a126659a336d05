"""The graph walks the archive code shares: what a set of nodes reaches, and edges turned round."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlops_lite.core.graph import inverted, reachable


def test_reachable_holds_the_starts_and_everything_below_them_once() -> None:
    edges = {"root": ["a", "b"], "a": ["x"], "b": ["x", "y"], "y": ["root"]}  # with a cycle
    assert reachable(["a"], edges) == {"a", "x"}
    assert reachable(["root"], edges) == {"root", "a", "b", "x", "y"}
    assert reachable([], edges) == set()
    assert reachable(["lone"], edges) == {"lone"}


def test_inverted_points_each_edge_the_other_way() -> None:
    assert inverted({"r1": ["a", "b"], "r2": ["b"]}) == {"a": ["r1"], "b": ["r1", "r2"]}
    assert reachable(["b"], inverted({"top": ["r1"], "r1": ["b"]})) == {"b", "r1", "top"}


@given(st.dictionaries(st.integers(0, 20), st.lists(st.integers(0, 20), max_size=4)))
def test_what_a_node_reaches_it_is_reached_from_in_the_inverted_graph(
    edges: dict[int, list[int]],
) -> None:
    nodes = set(edges) | {child for children in edges.values() for child in children}
    back = inverted(edges)
    for node in nodes:
        for other in reachable([node], edges):
            assert node in reachable([other], back)
