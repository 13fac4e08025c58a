"""The operator keeps `kattle.dev/dot` current on definitions, and writes nothing otherwise."""

from __future__ import annotations

import time
from typing import Any

import pydot

from kattle.diagrams import ANNOTATION
from tests.support.handlers import HandlerServer
from tests.support.world import GROUP, VERSION, World, wait_for


def _definition(world: World, plural: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = world.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
    return body


def _dot(world: World, plural: str, name: str) -> str:
    return str(
        _definition(world, plural, name)["metadata"].get("annotations", {}).get(ANNOTATION, "")
    )


def test_diagrams_follow_processes_and_handlers_and_rest_when_nothing_changes(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    drawn = wait_for(
        "the process diagram",
        lambda: f"{go}[no-op]" in (d := _dot(world, "processdefinitions", go)) and d,
    )
    assert pydot.graph_from_dot_data(drawn)
    wait_for(
        "the type diagram", lambda: f"{go}[no-op]" in _dot(world, "resourcedefinitions", world.type)
    )

    handler = world.handler("audit", [go], handler_server.url("/audit"), phase="post")
    wait_for(
        "the handler in the process diagram",
        lambda: f"{go}[post={handler}]" in _dot(world, "processdefinitions", go),
        timeout=10,
    )
    wait_for(
        "the handler in the type diagram",
        lambda: f"{go}[post={handler}]" in _dot(world, "resourcedefinitions", world.type),
        timeout=10,
    )

    back = world.process("back", ["gone"], "backing", "requested")
    wait_for(
        "the new process in the type diagram",
        lambda: back in _dot(world, "resourcedefinitions", world.type),
        timeout=10,
    )
    time.sleep(1)
    versions = [
        _definition(world, "processdefinitions", go)["metadata"]["resourceVersion"],
        _definition(world, "resourcedefinitions", world.type)["metadata"]["resourceVersion"],
    ]
    time.sleep(3)  # several redraw passes' worth: none may write
    assert versions == [
        _definition(world, "processdefinitions", go)["metadata"]["resourceVersion"],
        _definition(world, "resourcedefinitions", world.type)["metadata"]["resourceVersion"],
    ]
