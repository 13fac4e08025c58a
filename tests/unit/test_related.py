"""Runs on related objects, on plain data: which objects, what a step's runs come to, and
the chains that are refused rather than deadlocked."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.api import ProcessDefinition, ResourceDefinition
from kattle.machine.catalog import Catalog
from kattle.machine.related import (
    ATTEMPT_LABEL,
    Link,
    StepState,
    child_name,
    cycle,
    latest_attempt,
    names_in,
    owned_by,
    step_id,
    step_verdict,
    to_start,
)


@pytest.mark.parametrize(
    ("spec", "path", "names"),
    [
        ({"volumes": ["a", "b"]}, "volumes", ["a", "b"]),
        ({"volumes": ["a", "b", "a"]}, "volumes", ["a", "b"]),
        ({"network": {"nic": "n1"}}, "network.nic", ["n1"]),
        ({}, "volumes", []),
        ({"volumes": None}, "volumes", []),
        ({"volumes": ""}, "volumes", []),
        ({"network": "flat"}, "network.nic", []),
        (
            {"volumes": [1, 2]},
            "volumes",
            "spec.volumes must be a name or a list of names, not list",
        ),
        (
            {"volumes": {"a": 1}},
            "volumes",
            "spec.volumes must be a name or a list of names, not dict",
        ),
        (
            {"volumes": ["a", ""]},
            "volumes",
            "spec.volumes must be a name or a list of names, not list",
        ),
    ],
)
def test_names_a_spec_field_holds(spec: dict[str, Any], path: str, names: list[str] | str) -> None:
    assert names_in(spec, path) == names


def _obj(name: str, *owners: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "ownerReferences": [{"uid": u} for u in owners]}}


def test_children_are_the_objects_an_owner_reference_names() -> None:
    objects = [_obj("b", "p"), _obj("a", "x", "p"), _obj("c", "x"), _obj("d")]
    assert [o["metadata"]["name"] for o in owned_by(objects, "p")] == ["a", "b"]


def test_run_names_are_stable_per_attempt_and_labels_fit() -> None:
    first = child_name("v1", "volume.activate", "uid-1", "before-0", 1)
    assert first == child_name("v1", "volume.activate", "uid-1", "before-0", 1)
    assert first != child_name("v1", "volume.activate", "uid-1", "before-0", 2)
    assert first != child_name("v1", "volume.activate", "uid-1", "after-0", 1)
    assert first.startswith("v1.activate-")
    assert len(step_id("0" * 36, "before-15")) <= 63
    assert latest_attempt([{ATTEMPT_LABEL: "1"}, {ATTEMPT_LABEL: "3"}, {}]) == 3
    assert latest_attempt([]) == 1


DONE = {"phase": "Succeeded", "exitReason": "Done"}


@pytest.mark.parametrize(
    ("runs", "state", "message"),
    [
        (
            {"a": DONE, "b": {"phase": "Succeeded", "exitReason": "AlreadyDone"}},
            StepState.SUCCEEDED,
            "",
        ),
        ({"a": DONE, "b": {"phase": "Running"}}, StepState.RUNNING, "waiting for b"),
        ({"a": DONE}, StepState.RUNNING, "waiting for b"),  # b not created yet
        (
            {
                "a": {"phase": "Failed", "exitReason": "RetriesExhausted", "message": "disk full"},
                "b": DONE,
            },
            StepState.FAILED,
            "a ended Failed: disk full",
        ),
        # A failure decides only once every run has ended: none is left running unseen.
        ({"a": {"phase": "Failed"}, "b": {"phase": "Pending"}}, StepState.RUNNING, "waiting for b"),
        (
            {"a": {"phase": "Canceled", "exitReason": "Canceled"}, "b": DONE},
            StepState.FAILED,
            "a ended Canceled: Canceled",
        ),
        (
            {
                "a": {"phase": "Failed", "exitReason": "Cycle", "message": "x"},
                "b": {"phase": "Failed"},
            },
            StepState.CYCLE,
            "a ended Failed: x; b ended Failed: Failed",
        ),
    ],
)
def test_what_a_steps_runs_come_to(runs: dict[str, Any], state: StepState, message: str) -> None:
    verdict = step_verdict(runs, ["a", "b"])
    assert (verdict.state, verdict.message) == (state, message)


@pytest.mark.parametrize(
    ("runs", "bound", "started"),
    [
        ({}, 10, ["a", "b", "c"]),
        ({}, 2, ["a", "b"]),
        ({"a": {}, "b": {"phase": "Running"}}, 2, []),
        ({"a": DONE, "b": {"phase": "Running"}}, 2, ["c"]),
        ({"a": DONE, "b": DONE, "c": DONE}, 1, []),
    ],
)
def test_siblings_start_up_to_the_bound(
    runs: dict[str, Any], bound: int, started: list[str]
) -> None:
    assert to_start(["a", "b", "c"], runs, bound) == started


def test_a_run_on_an_object_an_ancestor_holds_is_refused_naming_the_chain() -> None:
    chain = [
        Link("web.start-1", "instance.start", "web"),
        Link("disk.activate-2", "volume.activate", "disk"),
    ]
    assert cycle(chain, "nic.activate", "eth0") is None
    assert cycle(chain, "volume.attach", "other") is None
    assert cycle(chain, "nic.activate", "web") is None  # same name, another type
    message = cycle(chain, "instance.stop", "web")
    assert message == (
        "instance.start on web (web.start-1) -> volume.activate on disk (disk.activate-2) -> "
        "instance.stop on web: web is held by web.start-1, which waits for this run; "
        "refused rather than deadlocked"
    )


def _rd(name: str, scope: str = "Namespaced", **spec: Any) -> ResourceDefinition:
    return ResourceDefinition.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"names": {"kind": name.title(), "plural": f"{name}s"}, "scope": scope, **spec},
        }
    )


def _pd(name: str, *related: dict[str, Any]) -> ProcessDefinition:
    return ProcessDefinition.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "resourceType": name.partition(".")[0],
                "start": ["a"],
                "transitioning": f"{name.partition('.')[2]}ing",
                "done": "b",
                "relatedRuns": list(related),
            },
        }
    )


def _catalog(*items: Any) -> Catalog:
    catalog = Catalog()
    for item in items:
        catalog.put(item)
    return catalog


def test_relations_and_related_runs_are_checked_against_the_other_definitions() -> None:
    volumes = {"name": "volumes", "type": "volume"}
    nics = {"name": "nics", "type": "nic"}
    cluster = {"name": "zones", "type": "zone"}
    catalog = _catalog(
        _rd("instance", relations=[volumes, nics, cluster]),
        _rd("volume"),
        _rd("zone", scope="Cluster"),
        _pd("instance.start", {"relation": "volumes", "process": "volume.activate"}),
        _pd("instance.stop", {"relation": "disks", "process": "volume.activate"}),
        _pd("instance.fix", {"relation": "volumes", "process": "volume.gone"}),
        _pd("instance.move", {"relation": "volumes", "process": "instance.start"}),
        _pd("volume.activate"),
    )
    assert catalog.relation_problems("instance") == [
        "relation nics: resource type 'nic' has no ResourceDefinition",
        "relation zones: zone is Cluster and instance is Namespaced; related objects share "
        "the object's scope (and namespace)",
    ]
    assert catalog.process_problems("instance.start") == []
    assert catalog.process_problems("instance.stop") == [
        "relatedRuns[0]: instance has no relation 'disks'"
    ]
    assert catalog.process_problems("instance.fix") == [
        "relatedRuns[0]: volume.gone has no ProcessDefinition"
    ]
    assert catalog.process_problems("instance.move") == [
        "relatedRuns[0]: instance.start is not a process of volume, the type of relation 'volumes'"
    ]


def test_related_runs_that_lead_back_to_their_process_are_a_problem() -> None:
    catalog = _catalog(
        _rd("a", relations=[{"name": "bs", "type": "b"}]),
        _rd("b", relations=[{"name": "as", "type": "a"}]),
        _pd("a.go", {"relation": "bs", "process": "b.go"}),
        _pd("b.go", {"relation": "as", "process": "a.go"}),
        _pd("b.stop"),
        _pd("a.stop", {"relation": "bs", "process": "b.stop"}),
    )
    assert catalog.related_cycle("a.go") == ["a.go", "b.go", "a.go"]
    assert catalog.process_problems("a.go") == [
        "related runs form a cycle, a.go -> b.go -> a.go: a run would wait for itself"
    ]
    assert catalog.related_cycle("a.stop") == []
    assert catalog.process_problems("a.stop") == []
