"""Reading a diagram back: its states and edges by label, for tests that check what is drawn."""

from __future__ import annotations

import pydot


def parse_dot(dot: str) -> tuple[dict[str, dict[str, str]], set[tuple[str, str, str, str]]]:
    """Nodes by label with their attributes; edges as (from, to, label, style) by labels."""
    [graph] = pydot.graph_from_dot_data(dot) or [None]
    assert graph is not None
    labels = {}
    nodes = {}
    for node in graph.get_nodes():
        name = node.get_name()
        if name in ("node", "edge", "graph") or name.startswith("initial"):
            continue
        label = node.get("label").strip('"')
        labels[name] = label
        nodes[label] = {k: str(v).strip('"') for k, v in node.get_attributes().items()}
    edges = {
        (
            labels.get(e.get_source(), e.get_source()),
            labels.get(e.get_destination(), e.get_destination()),
            str(e.get("label") or "").strip('"'),
            str(e.get("style") or "").strip('"'),
        )
        for e in graph.get_edges()
    }
    return nodes, edges
