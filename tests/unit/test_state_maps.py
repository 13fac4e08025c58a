"""State maps: a process whose transitioning and done states depend on where it starts
(Cattle's update). Admission, the catalog's rules and the diagrams, on plain data."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.api.processdefinition import ProcessDefinition, ProcessDefinitionSpec
from kattle.api.resourcedefinition import ResourceDefinition
from kattle.diagrams.build import process_diagram, resource_diagram
from kattle.machine.admission import Facts, Verdict, decide
from kattle.machine.catalog import Catalog, Step, without_logic
from kattle.runner.driving import Target
from tests.support.dot import parse_dot

UPDATE_MAP = [
    {"start": "inactive", "transitioning": "updating-inactive", "done": "inactive"},
    {"start": "active", "transitioning": "updating-active", "done": "active"},
]


def process(name: str, **spec: Any) -> ProcessDefinition:
    return ProcessDefinition.model_validate(
        {"metadata": {"name": name}, "spec": {"resourceType": "volume", **spec}}
    )


UPDATE = process("volume.update", stateMap=UPDATE_MAP)
ACTIVATE = process("volume.activate", start=["inactive"], transitioning="activating", done="active")


def catalog(*processes: ProcessDefinition) -> Catalog:
    found = Catalog()
    found.put(
        ResourceDefinition.model_validate(
            {
                "metadata": {"name": "volume"},
                "spec": {"names": {"kind": "Volume", "plural": "volumes"}},
            }
        )
    )
    for definition in processes:
        found.put(definition)
    return found


@pytest.mark.parametrize(
    ("spec", "starts", "transitionings", "dones"),
    [
        (UPDATE.spec, ["inactive", "active"], ["updating-inactive", "updating-active"],
         ["inactive", "active"]),
        (ACTIVATE.spec, ["inactive"], ["activating"], ["active"]),
        (process("volume.x", start=["a", "b"], transitioning="t", done="d").spec,
         ["a", "b"], ["t"], ["d"]),
    ],
)  # fmt: skip
def test_routes_of_both_forms(
    spec: ProcessDefinitionSpec, starts: list[str], transitionings: list[str], dones: list[str]
) -> None:
    assert spec.starts() == starts
    assert spec.transitionings() == transitionings
    assert spec.dones() == dones


@pytest.mark.parametrize(
    ("state", "transitioning", "done"),
    [
        ("inactive", "updating-inactive", "inactive"),
        ("active", "updating-active", "active"),
        # A run resumed after a restart finds the object in a transitioning state.
        ("updating-active", "updating-active", "active"),
        ("updating-inactive", "updating-inactive", "inactive"),
    ],
)
def test_the_route_follows_the_state(state: str, transitioning: str, done: str) -> None:
    route = UPDATE.spec.route(state)
    assert route is not None
    assert (route.transitioning, route.done) == (transitioning, done)


def test_no_route_from_elsewhere() -> None:
    assert UPDATE.spec.route("removed") is None


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ({"state": "inactive"}, Verdict.ADMIT),
        ({"state": "active"}, Verdict.ADMIT),
        # Every done state is also a start state: never "already done".
        ({"state": "removed"}, Verdict.CANCEL),
        # Left in one of its transitioning states: the next run takes it again.
        ({"state": "updating-active", "transitioning": "error"}, Verdict.ADMIT),
        (
            {"state": "updating-inactive", "activeRun": "me", "process": "volume.update"},
            Verdict.RESUME,
        ),
    ],
)
def test_admission_with_a_state_map(status: dict[str, Any], verdict: Verdict) -> None:
    facts = Facts(run="me", process="volume.update", spec=UPDATE.spec, initial=None, status=status)
    assert decide(facts).verdict is verdict


def test_a_cancel_names_every_start_state() -> None:
    facts = Facts(
        run="me",
        process="volume.update",
        spec=UPDATE.spec,
        initial=None,
        status={"state": "removed"},
    )
    assert "starts from inactive, active" in decide(facts).reason


def test_a_target_takes_the_route_of_the_state_it_is_given() -> None:
    found = catalog(UPDATE)
    target = Target(UPDATE, found.resources["volume"], None, None)  # type: ignore[arg-type]
    active = target.along("active")
    assert (active.transitioning, active.done) == ("updating-active", "active")
    # A resumed run: by the transitioning state; its route stays once chosen.
    resumed = target.along("updating-inactive")
    assert (resumed.transitioning, resumed.done) == ("updating-inactive", "inactive")
    assert resumed.along("nowhere").done == "inactive"


def test_transitioning_states_of_a_map_may_not_be_shared() -> None:
    clash = process("volume.resize", start=["active"], transitioning="updating-active", done="x")
    problems = catalog(UPDATE, clash).process_problems("volume.resize")
    assert any("'updating-active' is also volume.update's" in p for p in problems), problems


def test_on_error_must_start_from_every_transitioning_state_of_the_map() -> None:
    rescue = process("volume.error", start=["updating-active"], transitioning="erroring", done="e")
    update = process("volume.update", stateMap=UPDATE_MAP, onError="volume.error")
    problems = catalog(update, rescue).process_problems("volume.update")
    assert problems == [
        "onError process volume.error cannot start from 'updating-inactive', where a failed "
        "run leaves the object: add it to volume.error's start states"
    ]


def test_states_of_a_type_include_every_route() -> None:
    assert catalog(UPDATE, ACTIVATE).states("volume") == [
        "activating",
        "active",
        "inactive",
        "requested",
        "updating-active",
        "updating-inactive",
    ]


def edges_of(dot: str) -> set[tuple[str, str]]:
    return {(first, second) for first, second, _, _ in parse_dot(dot)[1]}


def test_diagrams_draw_one_way_through_per_start_state() -> None:
    found = catalog(UPDATE, ACTIVATE)
    # Never from updating-inactive to active: each start state has its own way through.
    assert edges_of(process_diagram(found, "volume.update")) == {
        ("inactive", "updating-inactive"),
        ("updating-inactive", "inactive"),
        ("active", "updating-active"),
        ("updating-active", "active"),
    }
    assert ("updating-active", "active") in edges_of(resource_diagram(found, "volume"))


@pytest.mark.parametrize(
    ("spec", "serving", "trigger", "expected", "chain"),
    [
        ({}, False, "manual", True, None),
        ({}, True, "manual", False, None),  # a handler serves the object
        ({"relatedRuns": [{"relation": "disks", "process": "disk.attach"}]}, False, "create",
         False, None),
        ({"delegate": "volume.activate"}, False, "create", False, None),
        ({}, False, "replay", False, None),  # a replay writes what its failed run's handlers asked
        ({}, False, "manual", False, "volume.remove"),  # hands its object to the chain
    ],
)  # fmt: skip
def test_which_runs_go_straight_to_done_in_one_write(
    spec: dict[str, Any], serving: bool, trigger: str, expected: bool, chain: str | None
) -> None:
    definition = process(
        "volume.create", start=["requested"], transitioning="creating", done="inactive", **spec
    )
    steps = [Step(0, "h", "handler", 0, None)] if serving else []  # type: ignore[arg-type]
    assert without_logic(definition.spec, steps, trigger, chain) is expected
