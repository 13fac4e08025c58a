"""`kattle dot rd/NAME | pd/NAME | KIND/NAME [-o dot|svg|png]`: a diagram, printed or drawn.

Definitions carry their diagram in the `kattle.dev/dot` annotation, kept by the operator.
For an object, the diagram of its type is drawn here with its current state highlighted,
from the definitions as the cluster has them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from kattle.api.processdefinition import ProcessDefinition
from kattle.api.processhandler import ProcessHandler
from kattle.api.resourcedefinition import ResourceDefinition
from kattle.cli.kube import CommandError, Kattle, add_connection_flags, api_client, split_target
from kattle.diagrams import ANNOTATION, GraphvizError, process_diagram, render, resource_diagram
from kattle.machine.catalog import Catalog
from kattle.machine.process_sets import add_standard_processes

MODELS: dict[str, Any] = {
    "ResourceDefinition": ResourceDefinition,
    "ProcessDefinition": ProcessDefinition,
    "ProcessHandler": ProcessHandler,
}
DEFINITIONS = {
    **dict.fromkeys(("rd", "resourcedefinition", "resourcedefinitions"), "resourcedefinitions"),
    **dict.fromkeys(("pd", "processdefinition", "processdefinitions"), "processdefinitions"),
}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "dot",
        help="a state-machine diagram: `kattle dot rd/instance -o png > instance.png`",
        description=(
            "Print the Graphviz diagram of a ResourceDefinition (rd/NAME), a "
            "ProcessDefinition (pd/NAME), or an object (KIND/NAME: its type's diagram with "
            "its current state highlighted); -o svg or png draws it with Graphviz's dot."
        ),
    )
    parser.add_argument("target", help="rd/NAME, pd/NAME or KIND/NAME")
    parser.add_argument(
        "-o", "--output", choices=["dot", "svg", "png"], default="dot", help="default: dot"
    )
    parser.add_argument("--to", metavar="FILE", help="write to FILE instead of standard output")
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="FILE",
        help=(
            "draw from definitions in these YAML files instead of the cluster's (repeatable), "
            "e.g. to see a lifecycle before applying it"
        ),
    )
    add_connection_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    kind, name = split_target(args.target)
    if args.filename:
        _emit(_from_files(args.filename, kind, name), args.output, args.to)
        return 0
    api, namespace = api_client(args)
    kattle = Kattle(api)
    plural = DEFINITIONS.get(kind.lower())
    if plural is not None:
        definition = kattle.get(plural, name)
        dot = (definition["metadata"].get("annotations") or {}).get(ANNOTATION)
        if not dot:
            raise CommandError(f"{plural} {name!r} has no diagram yet: is the operator running?")
    else:
        resource = kattle.resource_type(kind)
        obj = kattle.object(resource, name, namespace)
        state = (obj.get("status") or {}).get("state")
        dot = resource_diagram(_catalog(kattle), resource["metadata"]["name"], highlight=state)
    _emit(dot, args.output, args.to)
    return 0


def _from_files(files: list[str], kind: str, name: str) -> str:
    catalog = Catalog()
    for file in files:
        try:
            documents = list(yaml.safe_load_all(Path(file).read_text()))
        except (OSError, yaml.YAMLError) as error:
            raise CommandError(f"{file}: {error}") from None
        for document in documents:
            model = MODELS.get((document or {}).get("kind", ""))
            if model is not None:
                try:
                    catalog.put(model.model_validate(document))
                except ValidationError as error:
                    raise CommandError(f"{file}: {document['kind']} is invalid: {error}") from None
    add_standard_processes(catalog)
    plural = DEFINITIONS.get(kind.lower())
    if plural == "processdefinitions":
        if name not in catalog.processes:
            raise CommandError(f"no ProcessDefinition {name!r} in {', '.join(files)}")
        return process_diagram(catalog, name)
    if plural == "resourcedefinitions":
        if name not in catalog.resources:
            raise CommandError(f"no ResourceDefinition {name!r} in {', '.join(files)}")
        return resource_diagram(catalog, name)
    raise CommandError("with -f, draw rd/NAME or pd/NAME")


def _catalog(kattle: Kattle) -> Catalog:
    catalog = Catalog()
    for kind_name, model in MODELS.items():
        for body in kattle.list(kind_name.lower() + "s"):
            catalog.put(model.model_validate(body))
    return catalog


def _emit(dot: str, fmt: Literal["dot", "svg", "png"], to: str | None) -> None:
    if fmt == "dot":
        data = dot.encode()
    else:
        try:
            data = render(dot, fmt)
        except GraphvizError as error:
            raise CommandError(str(error)) from None
    if to:
        Path(to).write_bytes(data)
    elif fmt == "png" and sys.stdout.isatty():
        raise CommandError("a PNG is not for a terminal: redirect it, or use --to FILE")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
