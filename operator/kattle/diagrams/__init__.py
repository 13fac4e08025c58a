"""Graphviz DOT diagrams of processes and resource types, built with pydot.

`process_diagram` draws one ProcessDefinition, `resource_diagram` a type's whole state
machine; both are pure functions of the catalog, deterministic to the byte, so an unchanged
catalog never rewrites an annotation.
"""

from kattle.diagrams.build import (
    ANNOTATION,
    process_diagram,
    resource_diagram,
)
from kattle.diagrams.render import GraphvizError, GraphvizMissingError, render

__all__ = [
    "ANNOTATION",
    "GraphvizError",
    "GraphvizMissingError",
    "process_diagram",
    "render",
    "resource_diagram",
]
