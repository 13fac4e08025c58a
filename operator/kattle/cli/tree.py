"""`kattle tree KIND/NAME`: an object, its related objects by relation, and the state of each,
down the relations of their types too (like `crossplane beta trace`).

Reading the objects is the only I/O (`build_tree`); rendering a tree as a table, JSON or DOT
is pure (`tree_rows`, `tree_json`, `tree_dot`) and tested without a cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import pydot

from kattle.cli.kube import CommandError, Kattle, add_connection_flags, target_object
from kattle.cli.output import add_output_flag, document_printer, table
from kattle.machine.related import names_in, owned_by

MAX_DEPTH = 8


@dataclass
class Node:
    kind: str
    name: str
    status: dict[str, Any]
    relation: str = ""  # how its parent relates to it; empty for the root
    children: list[Node] = field(default_factory=list)
    note: str = ""  # why it has no children shown (already shown above, missing, too deep)

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tree = commands.add_parser(
        "tree",
        help="an object, its related objects and their states: `kattle tree instance/db-1`",
        description="Show KIND/NAME, the objects its relations name, and theirs, with states.",
    )
    tree.add_argument("target", help="KIND/NAME of the object (kind, plural or short name)")
    add_output_flag(tree, "wide", "json", "yaml", "jsonpath", "dot")
    add_connection_flags(tree)
    tree.set_defaults(handler=run_tree)


def run_tree(args: argparse.Namespace) -> int:
    printer = document_printer(args.output)
    kattle, resource, obj = target_object(args)
    definitions = {d["metadata"]["name"]: d for d in kattle.list("resourcedefinitions")}
    root = build_tree(kattle, definitions, resource, obj)
    if printer is not None:
        sys.stdout.write(printer(tree_json(root)))
    elif args.output == "dot":
        sys.stdout.write(tree_dot(root))
    else:
        wide = args.output == "wide"
        headers = ["NAME", "STATE", "PROCESS", "TRANSITIONING"] + (
            ["LAST RUN", "MESSAGE"] if wide else []
        )
        sys.stdout.write(table(headers, tree_rows(root, wide=wide)))
    return 0


def build_tree(
    kattle: Kattle,
    definitions: dict[str, dict[str, Any]],
    resource: dict[str, Any],
    obj: dict[str, Any],
    relation: str = "",
    seen: set[str] | None = None,
    depth: int = 0,
) -> Node:
    """The object and, through its type's relations, its related objects, each once."""
    kind = resource["spec"]["names"]["kind"]
    node = Node(kind, obj["metadata"]["name"], obj.get("status") or {}, relation)
    seen = set() if seen is None else seen
    key = f"{kind}/{obj['metadata'].get('namespace', '')}/{node.name}"
    if key in seen:
        node.note = "shown above"
        return node
    seen.add(key)
    if depth >= MAX_DEPTH:
        node.note = f"deeper than {MAX_DEPTH}"
        return node
    for rel in resource["spec"].get("relations") or []:
        other = definitions.get(rel["type"])
        if other is None:
            node.children.append(Node(rel["type"], "?", {}, rel["name"], note="no such type"))
            continue
        for related in _related(kattle, other, obj, rel):
            if not isinstance(related, Node):  # an object: follow its own relations
                related = build_tree(
                    kattle, definitions, other, related, rel["name"], seen, depth + 1
                )
            node.children.append(related)
    return node


def _related(
    kattle: Kattle, other: dict[str, Any], obj: dict[str, Any], relation: dict[str, Any]
) -> list[dict[str, Any] | Node]:
    """The objects of one relation, by name; a Node with a note for one that is missing."""
    namespace = obj["metadata"].get("namespace", "")
    spec = other["spec"]
    kind = spec["names"]["kind"]
    if relation.get("kind", "children") == "children":
        found = kattle.objects(other, namespace)
        return [dict(o) for o in owned_by(found, obj["metadata"]["uid"])]
    names = names_in(obj.get("spec") or {}, relation.get("field") or "")
    if isinstance(names, str):
        return [Node(kind, "?", {}, relation["name"], note=names)]
    related: list[dict[str, Any] | Node] = []
    for name in names:
        try:
            related.append(kattle.object(other, name, namespace))
        except CommandError:
            related.append(Node(kind, name, {}, relation["name"], note="does not exist"))
    return related


def tree_rows(root: Node, *, wide: bool = False) -> list[list[str]]:
    rows: list[list[str]] = []

    def walk(node: Node, prefix: str, branch: str) -> None:
        label = f"{branch}{node.relation + ': ' if node.relation else ''}{node.label}"
        status = node.status
        row = [
            label + (f" ({node.note})" if node.note else ""),
            status.get("state") or "-",
            status.get("process") or "-",
            status.get("transitioning") or "-",
        ]
        if wide:
            last = status.get("lastRun") or {}
            summary = f"{last.get('process')} {last.get('exitReason')}" if last else "-"
            row += [summary, (status.get("transitioningMessage") or "")[:80]]
        rows.append(row)
        for index, child in enumerate(node.children):
            last_child = index == len(node.children) - 1
            walk(
                child,
                prefix + ("   " if last_child else "│  "),
                prefix + ("└─ " if last_child else "├─ "),
            )

    walk(root, "", "")
    return rows


def tree_json(node: Node) -> dict[str, Any]:
    found: dict[str, Any] = {"kind": node.kind, "name": node.name, "status": node.status}
    if node.relation:
        found["relation"] = node.relation
    if node.note:
        found["note"] = node.note
    found["related"] = [tree_json(child) for child in node.children]
    return found


def tree_dot(root: Node) -> str:
    graph = pydot.Dot(graph_name="related", graph_type="digraph", rankdir="LR")
    graph.set_node_defaults(shape="box", fontname="Helvetica")

    def add(node: Node) -> str:
        ident = json.dumps(node.label)
        state = node.status.get("state") or node.note or "-"
        graph.add_node(pydot.Node(ident, label=json.dumps(f"{node.label}\n{state}")))
        for child in node.children:
            graph.add_edge(pydot.Edge(ident, add(child), label=json.dumps(child.relation)))
        return ident

    add(root)
    return str(graph.to_string())
