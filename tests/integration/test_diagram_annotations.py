"""The operator keeps `kattle.dev/dot` current on definitions, and writes nothing otherwise."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
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


def test_kattle_dot_prints_and_draws_diagrams(
    world: World, kubeconfig: Path, tmp_path: Path
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    wait_for("the process diagram", lambda: _dot(world, "processdefinitions", go))
    world.create("a")
    world.wait_state("a", "requested")

    def kattle(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [
                str(Path(sys.executable).parent / "kattle"),
                "dot",
                *args,
                f"--kubeconfig={kubeconfig}",
            ],
            capture_output=True,
            check=False,
        )

    printed = kattle(f"pd/{go}")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.decode() == _dot(world, "processdefinitions", go)

    highlighted = kattle(f"{world.kind}/a", "-n", world.namespace)
    assert highlighted.returncode == 0, highlighted.stderr
    [graph] = pydot.graph_from_dot_data(highlighted.stdout.decode()) or [None]
    assert graph is not None
    marked = [n.get("label") for n in graph.get_nodes() if n.get("penwidth")]
    assert marked == ['"requested"']

    if shutil.which("dot"):
        png = tmp_path / "type.png"
        drawn = kattle(f"rd/{world.type}", "-o", "png", "--to", str(png))
        assert drawn.returncode == 0, drawn.stderr
        assert png.read_bytes().startswith(b"\x89PNG")
        svg = kattle(f"{world.plural}/a", "-n", world.namespace, "-o", "svg")
        assert b"<svg" in svg.stdout

    missing = kattle("rd/no-such-type")
    assert missing.returncode == 1
    assert (
        missing.stderr.decode().strip()
        == "kattle dot: resourcedefinitions 'no-such-type' not found"
    )
