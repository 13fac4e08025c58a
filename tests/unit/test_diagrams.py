"""Diagrams of Cattle's instance lifecycle, parsed back with pydot, and of random graphs."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kattle.api.processdefinition import ProcessDefinition
from kattle.api.processhandler import ProcessHandler
from kattle.api.resourcedefinition import ResourceDefinition
from kattle.diagrams import process_diagram, render, resource_diagram
from kattle.machine.catalog import Catalog
from tests.support.dot import parse_dot
from tests.support.paths import SAMPLES

MODELS: dict[str, Any] = {
    "ResourceDefinition": ResourceDefinition,
    "ProcessDefinition": ProcessDefinition,
    "ProcessHandler": ProcessHandler,
}


def _documents() -> list[dict[str, Any]]:
    docs = []
    for name in ("instance.yaml", "handlers.yaml"):
        docs += [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d]
    return docs


def _catalog(docs: list[dict[str, Any]]) -> Catalog:
    catalog = Catalog()
    for doc in docs:
        catalog.put(MODELS[doc["kind"]].model_validate(doc))
    return catalog


def test_a_process_diagram_shows_states_handlers_and_on_error() -> None:
    nodes, edges = parse_dot(process_diagram(_catalog(_documents()), "instance.start"))
    assert set(nodes) == {"stopped", "creating", "starting", "running", "stopping"}
    assert nodes["starting"]["fillcolor"] == "orange"
    assert edges == {
        ("stopped", "starting", "instance.start", "dotted"),
        ("creating", "starting", "instance.start", "dotted"),
        ("starting", "running", "instance.start[pre=instance-validate]", "bold"),
        ("starting", "stopping", "onError: instance.stop", "dashed"),
        ("stopping", "stopped", "instance.stop[no-op]", "solid"),
    }


def test_the_instance_lifecycle_diagram_has_every_state_and_process() -> None:
    catalog = _catalog(_documents())
    nodes, edges = parse_dot(resource_diagram(catalog, "instance", highlight="running"))
    relations = {"volumes: volume", "nic: nic (spec.nic)"}
    assert set(nodes) == set(catalog.states("instance")) | relations
    assert nodes["requested"]["peripheries"] == "2"  # the initial state
    assert nodes["running"]["fillcolor"] == "lightskyblue"
    assert [n for n, a in nodes.items() if a.get("penwidth")] == ["running"]
    assert ("initial", "requested", "", "") in edges
    assert (
        "creating",
        "stopped",
        "instance.create[logic=instance-allocate-ip;post=record-creates]",
        "bold",
    ) in edges
    assert ("removing", "removed", "instance.remove[no-op]", "solid") in edges
    transitioning = {n for n, a in nodes.items() if a.get("fillcolor") == "orange"}
    assert transitioning == {p.spec.transitioning for p in catalog.processes_of("instance")}
    # One edge into the transitioning state per start state, one out to done, per process.
    expected = sum(
        len(p.spec.start) + 1 + bool(p.spec.on_error) for p in catalog.processes_of("instance")
    )
    # The runs its processes make on related objects, from their transitioning states.
    related = [(p, r) for p in catalog.processes_of("instance") for r in p.spec.related_runs]
    assert ("starting", "volumes: volume", "volume.activate (before)", "dashed") in edges
    assert ("stopping", "nic: nic (spec.nic)", "nic.deactivate (after)", "dashed") in edges
    assert len(edges) == expected + 1 + len(related)  # and the entry arrow


def test_each_state_field_with_an_initial_state_has_an_entry_arrow() -> None:
    docs = _documents()
    [resource] = [d for d in docs if d["kind"] == "ResourceDefinition"]
    resource["spec"]["initialStates"] = {"healthState": "unknown"}
    docs.append(
        {
            "kind": "ProcessDefinition",
            "metadata": {"name": "instance.check"},
            "spec": {
                "resourceType": "instance",
                "stateField": "healthState",
                "start": ["unknown", "unhealthy"],
                "transitioning": "checking",
                "done": "healthy",
            },
        }
    )
    nodes, edges = parse_dot(resource_diagram(_catalog(docs), "instance"))
    assert nodes["requested"]["peripheries"] == "2"
    assert nodes["healthState: unknown"]["peripheries"] == "2"
    assert "peripheries" not in nodes["healthState: unhealthy"]
    assert ("initial", "requested", "", "") in edges
    assert ("initial_healthState", "healthState: unknown", "", "") in edges


def test_diagrams_are_the_same_bytes_whatever_the_order() -> None:
    docs = _documents()
    first = _catalog(docs)
    random.Random(7).shuffle(docs)
    second = _catalog(docs)
    assert resource_diagram(first, "instance") == resource_diagram(second, "instance")
    for name in first.processes:
        assert process_diagram(first, name) == process_diagram(second, name)


def test_a_new_handler_appears_in_its_process_and_its_type() -> None:
    docs = _documents()
    catalog = _catalog(docs)
    before = resource_diagram(catalog, "instance")
    catalog.put(
        ProcessHandler.model_validate(
            {
                "metadata": {"name": "audit"},
                "spec": {
                    "processes": ["instance.stop"],
                    "phase": "post",
                    "clientConfig": {"url": "https://audit.example.com/"},
                },
            }
        )
    )
    assert "instance.stop[post=audit]" in process_diagram(catalog, "instance.stop")
    after = resource_diagram(catalog, "instance")
    assert after != before
    assert "instance.stop[post=audit]" in after


def test_dozens_of_processes_stay_far_below_the_annotation_limit() -> None:
    catalog = Catalog()
    catalog.put(
        ResourceDefinition.model_validate(
            {"metadata": {"name": "big"}, "spec": {"names": {"kind": "Big", "plural": "bigs"}}}
        )
    )
    for i in range(60):
        catalog.put(
            ProcessDefinition.model_validate(
                {
                    "metadata": {"name": f"big.process-number-{i:02d}"},
                    "spec": {
                        "resourceType": "big",
                        "start": [f"state-{i}", f"state-{(i + 1) % 60}", "requested"],
                        "transitioning": f"transitioning-{i}",
                        "done": f"state-{(i + 7) % 60}",
                    },
                }
            )
        )
        for phase in ("pre", "handler", "post"):
            catalog.put(
                ProcessHandler.model_validate(
                    {
                        "metadata": {"name": f"handler-{phase}-{i:02d}"},
                        "spec": {
                            "processes": [f"big.process-number-{i:02d}"],
                            "phase": phase,
                            "clientConfig": {"url": "https://h.example.com/"},
                        },
                    }
                )
            )
    size = len(resource_diagram(catalog, "big").encode())
    assert size < 64 * 1024, size  # the API server allows 256 KiB for all annotations


_name = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=63
)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(_name, min_size=1, max_size=4), _name, _name),
        min_size=1,
        max_size=12,
    ),
    _name,
)
def test_random_process_graphs_always_draw_andparse_dot(
    processes: list[tuple[list[str], str, str]], initial: str
) -> None:
    """Cycles, shared and unreachable states, quotes, backslashes, unicode: still one graph
    that parses back with the same states."""
    # The builder is fed names the API server would refuse too: valid models first, then
    # any strings put in their place.
    catalog = Catalog()
    resource = ResourceDefinition.model_validate(
        {"metadata": {"name": "t"}, "spec": {"names": {"kind": "T", "plural": "ts"}}}
    )
    resource.spec.initial_state = initial
    catalog.put(resource)
    for i, (start, transitioning, done) in enumerate(processes):
        process = ProcessDefinition.model_validate(
            {
                "metadata": {"name": f"t.p{i}"},
                "spec": {"resourceType": "t", "start": ["a"], "transitioning": "b", "done": "c"},
            }
        )
        process.spec.start = start
        process.spec.transitioning = transitioning
        process.spec.done = done
        process.spec.on_error = f"t.p{(i + 1) % len(processes)}"
        catalog.put(process)
    nodes, _ = parse_dot(resource_diagram(catalog, "t", highlight=initial))
    states = {initial} | {s for p in processes for s in (*p[0], p[1], p[2])}
    assert len(nodes) == len(states)
    for name in catalog.processes:
        parse_dot(process_diagram(catalog, name))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_rendering_with_graphviz(fmt: str, magic: bytes, tmp_path: Path) -> None:
    picture = render(resource_diagram(_catalog(_documents()), "instance"), fmt)  # type: ignore[arg-type]
    assert magic in picture[:1000]
