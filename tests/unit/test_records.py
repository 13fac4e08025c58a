"""Which runs begin without a ProcessInstance (`record: OnFailure`), on plain data."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.api.processdefinition import ProcessDefinitionSpec
from kattle.machine.records import goes_unrecorded, lifecycle_run_name, unrecorded_holder


def spec(trigger: str = "create", record: str = "OnFailure") -> ProcessDefinitionSpec:
    return ProcessDefinitionSpec.model_validate(
        {
            "resourceType": "widget",
            "start": ["requested"],
            "transitioning": "creating",
            "done": "ready",
            "trigger": trigger,
            "record": record,
        }
    )


@pytest.mark.parametrize(
    ("process_trigger", "record", "run_trigger", "unrecorded"),
    [
        ("create", "OnFailure", "create", True),
        ("delete", "OnFailure", "delete", True),
        ("create", "Always", "create", False),  # the default keeps every run
        ("manual", "OnFailure", "manual", False),  # a user's ProcessInstance is its record
        ("create", "OnFailure", "manual", False),  # a create process run by hand
        ("create", "OnFailure", "chain", False),
        ("create", "OnFailure", "related", False),
    ],
)
def test_only_the_operators_own_lifecycle_runs_go_unrecorded(
    process_trigger: str, record: str, run_trigger: str, unrecorded: bool
) -> None:
    assert goes_unrecorded(spec(process_trigger, record), run_trigger) is unrecorded


META = {"name": "w1", "uid": "0a1b"}
OWN = lifecycle_run_name(META, "widget.create")


@pytest.mark.parametrize(
    ("status", "definition", "holder"),
    [
        ({"activeRun": OWN, "process": "widget.create"}, spec(), OWN),
        # held by a user's run of the same process: it has a record of its own
        ({"activeRun": "w1.create-x7k2p", "process": "widget.create"}, spec(), None),
        ({"activeRun": OWN, "process": "widget.create"}, spec(record="Always"), None),
        ({"activeRun": OWN, "process": "widget.create"}, None, None),  # process unknown
        ({"activeRun": OWN}, spec(), None),
        ({"process": "widget.create"}, spec(), None),
        ({}, spec(), None),
    ],
)
def test_the_holder_without_a_record_is_named_by_the_object(
    status: dict[str, Any], definition: ProcessDefinitionSpec | None, holder: str | None
) -> None:
    assert unrecorded_holder(META, status, lambda _: definition) == holder


def test_the_name_is_the_one_the_operator_gives_its_own_run() -> None:
    assert lifecycle_run_name(dict(META), "widget.create") == OWN
    assert lifecycle_run_name({**META, "uid": "ffff"}, "widget.create") != OWN
    assert OWN.startswith("w1.create-")
