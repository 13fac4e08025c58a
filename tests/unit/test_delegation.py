"""Delegation (Cattle's delegate): when a process may hand its run to another, on plain data."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.api.processdefinition import ProcessDefinition, ProcessDefinitionSpec
from kattle.machine.delegation import definition_problems, problem


def spec(**fields: Any) -> ProcessDefinitionSpec:
    return ProcessDefinition.model_validate(
        {"metadata": {"name": "agent.x"}, "spec": {"resourceType": "agent", **fields}}
    ).spec


CREATE = spec(
    start=["requested"], transitioning="registering", done="inactive", delegate="agent.activate"
)
ACTIVATE = spec(start=["inactive"], transitioning="activating", done="active")

HOST_ACTIVATE = ProcessDefinition.model_validate(
    {
        "metadata": {"name": "host.activate"},
        "spec": {"resourceType": "host", "start": ["inactive"], "transitioning": "t", "done": "d"},
    }
).spec


@pytest.mark.parametrize(
    ("delegate", "found"),
    [
        (ACTIVATE, None),
        (None, "agent.create delegates to agent.activate, which has no ProcessDefinition"),
        (spec(start=["active"], transitioning="t", done="d"),
         "agent.create delegates to agent.activate, which does not start from inactive, where "
         "agent.create ends: add it to agent.activate's start states"),
        (spec(start=["inactive"], transitioning="t", done="d", stateField="health"),
         "agent.create delegates to agent.activate, which moves health; agent.create moves state"),
        (HOST_ACTIVATE,
         "agent.create delegates to agent.activate, a process of another type"),
    ],
)  # fmt: skip
def test_when_a_run_may_be_handed_over(
    delegate: ProcessDefinitionSpec | None, found: str | None
) -> None:
    assert problem("agent.create", CREATE, "inactive", "agent.activate", delegate) == found


def test_a_definition_reports_a_loop_of_delegates() -> None:
    specs = {
        "agent.create": CREATE,
        "agent.activate": spec(
            start=["inactive"], transitioning="activating", done="active", delegate="agent.reset"
        ),
        "agent.reset": spec(
            start=["active"], transitioning="resetting", done="requested", delegate="agent.create"
        ),
    }
    assert definition_problems("agent.create", CREATE, specs.get) == [
        "delegates form a loop, agent.create -> agent.activate -> agent.reset -> agent.create"
    ]
    assert definition_problems("agent.x", ACTIVATE, specs.get) == []


def test_every_way_a_mapped_process_ends_is_checked() -> None:
    update = spec(
        stateMap=[
            {"start": "inactive", "transitioning": "updating-inactive", "done": "inactive"},
            {"start": "active", "transitioning": "updating-active", "done": "active"},
        ],
        delegate="agent.activate",
    )
    assert definition_problems("agent.update", update, {"agent.activate": ACTIVATE}.get) == [
        "agent.update delegates to agent.activate, which does not start from active, where "
        "agent.update ends: add it to agent.activate's start states"
    ]
