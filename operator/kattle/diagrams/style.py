"""Cattle's visual conventions for process diagrams, as named attributes.

From Cattle: the edge into a transitioning state is dotted and labelled with the process,
the transitioning state is orange, the edge to done is labelled with the process and its
logic, bold when there is logic. Added here: the initial state is marked, onError edges are
red and dashed, one state can be highlighted (an object's current state), and relations
(with the related runs processes make on them) are blue and dashed.
"""

from __future__ import annotations

GRAPH = {"rankdir": "LR", "fontname": "Helvetica", "fontsize": "11", "labelloc": "t"}
NODE = {"shape": "box", "style": "rounded", "fontname": "Helvetica", "fontsize": "10"}
EDGE = {"fontname": "Helvetica", "fontsize": "9"}

STATE: dict[str, str] = {}
TRANSITIONING = {"style": "rounded,filled", "fillcolor": "orange"}
INITIAL = {"peripheries": "2"}
HIGHLIGHT = {"style": "rounded,filled,bold", "fillcolor": "lightskyblue", "penwidth": "2"}
HIGHLIGHT_TRANSITIONING = {"style": "rounded,filled,bold", "fillcolor": "orange", "penwidth": "3"}

TO_TRANSITIONING = {"style": "dotted"}
TO_DONE = {"style": "solid"}
TO_DONE_WITH_LOGIC = {"style": "bold"}
ON_ERROR = {"style": "dashed", "color": "red", "fontcolor": "red"}
ENTRY = {"shape": "point", "width": "0.12"}
RELATION = {"shape": "folder", "style": "dashed", "color": "steelblue", "fontcolor": "steelblue"}
RELATED_RUNS = {"style": "dashed", "color": "steelblue", "fontcolor": "steelblue"}
