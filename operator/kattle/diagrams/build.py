"""Builds the DOT of one process, or of a resource type's whole state machine.

A type's diagram also shows its relations (one node each) and, from the transitioning
state of each process that runs processes on related objects, an edge to the relation
naming the process it runs there and when (before or after the handlers).

States are nodes, processes are edges: into the transitioning state from each start state,
then on to done (or, on failure, to the onError process). Nodes get short ids (`s0`, `s1`,
...) in sorted order and carry the state as their label, so any state name, dots, dashes
and unicode included, is safe and the output is the same bytes for the same definitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import pydot

from kattle.api.processdefinition import ProcessDefinition
from kattle.diagrams import style
from kattle.machine.catalog import Catalog

ANNOTATION = "kattle.dev/dot"
_Element = TypeVar("_Element", pydot.Node, pydot.Edge)
DEFAULT_FIELD = "state"

StateKey = tuple[str, str]  # (status field, state)
Edge = tuple[StateKey, StateKey, str, str]  # from, to, label, kind
# A type's relations as nodes (name, label), and the related runs its processes make, as
# edges from a process's transitioning state to a relation (from, relation name, label).
Relations = Sequence[tuple[str, str]]
RelatedRuns = Sequence[tuple[StateKey, str, str]]


def logic_label(catalog: Catalog, process: str) -> str:
    """Cattle's `process[pre=a;logic=b,c;post=d]`, or `process[no-op]` without handlers."""
    phases: dict[str, list[str]] = {"pre": [], "handler": [], "post": []}
    for step in catalog.plan(process):
        phases[step.phase].append(step.handler)
    parts = [
        f"{title}={','.join(names)}"
        for title, names in (
            ("pre", phases["pre"]),
            ("logic", phases["handler"]),
            ("post", phases["post"]),
        )
        if names
    ]
    return f"{process}[{';'.join(parts) or 'no-op'}]"


def _edges(catalog: Catalog, definition: ProcessDefinition) -> list[Edge]:
    spec = definition.spec
    name = definition.metadata.name or ""
    field = spec.state_field
    label = logic_label(catalog, name)
    look = "logic" if "[no-op]" not in label else "noop"
    routes = spec.routes()
    # A state map draws one way through per start state; without one, the start states
    # share one transitioning state and one edge on to done.
    edges: list[Edge] = [((field, r.start), (field, r.transitioning), name, "in") for r in routes]
    edges += dict.fromkeys(((field, r.transitioning), (field, r.done), label, look) for r in routes)
    on_error = catalog.processes.get(spec.on_error or "")
    if on_error is not None:
        for state in spec.transitionings():
            rescue = on_error.spec.route(state)
            if rescue is not None:
                target = (on_error.spec.state_field, rescue.transitioning)
                edges.append(((field, state), target, f"onError: {spec.on_error}", "error"))
    return edges


def _transitioning(definition: ProcessDefinition) -> set[StateKey]:
    field = definition.spec.state_field
    return {(field, state) for state in definition.spec.transitionings()}


def _graph(
    title: str,
    edges: Iterable[Edge],
    transitioning: set[StateKey],
    initials: Sequence[StateKey],
    highlight: StateKey | None,
    relations: Relations = (),
    related: RelatedRuns = (),
) -> str:
    graph = pydot.Dot(graph_type="digraph", graph_name="kattle", label=title, **style.GRAPH)
    graph.set_node_defaults(**style.NODE)
    graph.set_edge_defaults(**style.EDGE)
    edges = sorted(set(edges))
    states = sorted({e[0] for e in edges} | {e[1] for e in edges} | set(initials))
    ids = {state: f"s{i}" for i, state in enumerate(states)}
    # One entry point per state field: `initial` for `state`, `initial_<field>` for others.
    entries = {
        key: "initial" if key[0] == DEFAULT_FIELD else f"initial_{key[0]}" for key in initials
    }
    for entry in entries.values():
        graph.add_node(_with(pydot.Node(entry, label='""'), style.ENTRY))
    for state in states:
        attributes = dict(style.STATE)
        if state in transitioning:
            attributes.update(style.TRANSITIONING)
        if state in entries:
            attributes.update(style.INITIAL)
        if state == highlight:
            attributes.update(
                style.HIGHLIGHT_TRANSITIONING if state in transitioning else style.HIGHLIGHT
            )
        field, value = state
        label = value if field == DEFAULT_FIELD else f"{field}: {value}"
        graph.add_node(_with(pydot.Node(ids[state], label=_quoted(label)), attributes))
    for key, entry in entries.items():
        graph.add_edge(pydot.Edge(entry, ids[key]))
    kinds = {
        "in": style.TO_TRANSITIONING,
        "logic": style.TO_DONE_WITH_LOGIC,
        "noop": style.TO_DONE,
        "error": style.ON_ERROR,
    }
    for source, target, label, kind in edges:
        edge = pydot.Edge(ids[source], ids[target], label=_quoted(label))
        graph.add_edge(_with(edge, kinds[kind]))
    relation_ids = {name: f"r{i}" for i, (name, _) in enumerate(relations)}
    for name, label in relations:
        graph.add_node(_with(pydot.Node(relation_ids[name], label=_quoted(label)), style.RELATION))
    for source, name, label in related:
        if source in ids and name in relation_ids:
            edge = pydot.Edge(ids[source], relation_ids[name], label=_quoted(label))
            graph.add_edge(_with(edge, style.RELATED_RUNS))
    return str(graph.to_string())


def _with(element: _Element, attributes: Mapping[str, str]) -> _Element:
    for key, value in attributes.items():
        element.set(key, value)
    return element


def _quoted(text: str) -> str:
    # DOT strings: quotes and backslashes escaped, so any name stays one label.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def process_diagram(catalog: Catalog, process: str) -> str:
    """One process: its start states, transitioning and done states, its handlers in order
    on the edge to done, and the onError process it hands over to."""
    definition = catalog.processes[process]
    spec = definition.spec
    edges = _edges(catalog, definition)
    transitioning = _transitioning(definition)
    on_error = catalog.processes.get(spec.on_error or "")
    if on_error is not None:
        edges += [e for e in _edges(catalog, on_error) if e[3] != "in" and e[3] != "error"]
        transitioning |= _transitioning(on_error)
    title = f"{process} ({spec.trigger})"
    return _graph(title, edges, transitioning, [], None)


def resource_diagram(catalog: Catalog, resource_type: str, *, highlight: str | None = None) -> str:
    """A resource type's state machine: every process of the type, its initial state marked,
    and optionally one state (an object's current one) highlighted."""
    processes = catalog.processes_of(resource_type)
    edges: list[Edge] = []
    transitioning: set[StateKey] = set()
    for definition in processes:
        edges += _edges(catalog, definition)
        transitioning |= _transitioning(definition)
    resource = catalog.resources.get(resource_type)
    initials: list[StateKey] = []
    if resource is not None:
        initials.append((DEFAULT_FIELD, resource.spec.initial_state))
        initials += sorted(resource.spec.initial_states.items())
    title = resource.spec.names.kind if resource is not None else resource_type
    marked = (DEFAULT_FIELD, highlight) if highlight is not None else None
    relations = [
        (r.name, f"{r.name}: {r.type}" + (f" (spec.{r.field})" if r.field else ""))
        for r in (resource.spec.relations if resource is not None else [])
    ]
    related = [
        ((d.spec.state_field, state), step.relation, f"{step.process} ({step.when})")
        for d in processes
        for state in d.spec.transitionings()
        for step in d.spec.related_runs
    ]
    return _graph(title, edges, transitioning, initials, marked, relations, related)
