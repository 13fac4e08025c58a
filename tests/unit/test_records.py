"""Which runs begin without a ProcessInstance, which lost records are written from the
object's `lastRun`, and what an ended record adopts, on plain data."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.api.processdefinition import ProcessDefinitionSpec
from kattle.machine.records import (
    adoption,
    goes_unrecorded,
    keeps_success,
    lifecycle_run_name,
    lost_record,
    unrecorded_holder,
)


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
        # The default writes a create run's record once, as it ends...
        ("create", "Always", "create", True),
        # ...and a delete run's from the start: its object, and lastRun, go with it.
        ("delete", "Always", "delete", False),
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
        ({"activeRun": OWN, "process": "widget.create"}, spec(record="Always"), OWN),
        ({"activeRun": OWN, "process": "widget.delete"}, spec("delete", "Always"), None),
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


def test_only_the_default_mode_keeps_a_run_that_succeeds() -> None:
    assert keeps_success(spec(record="Always"))
    assert not keeps_success(spec(record="OnFailure"))
    assert keeps_success(None)  # a vanished definition: keep what there is


LAST = {"name": OWN, "process": "widget.create", "phase": "Succeeded", "exitReason": "Done"}


@pytest.mark.parametrize(
    ("status", "definition", "lost"),
    [
        ({"lastRun": LAST}, spec(record="Always"), True),
        ({"lastRun": {**LAST, "phase": "Failed"}}, spec(record="Always"), True),
        # OnFailure keeps no record of a success: nothing was lost
        ({"lastRun": LAST}, spec(record="OnFailure"), False),
        # a delete run of Always recorded itself from the start
        ({"lastRun": {**LAST, "process": "widget.delete"}}, spec("delete", "Always"), False),
        # a user's run of the create process has a record of its own
        ({"lastRun": {**LAST, "name": "w1.create-x7k2p"}}, spec(record="Always"), False),
        ({"lastRun": LAST}, None, False),  # process unknown
        ({}, spec(record="Always"), False),
        ({"lastRun": "w1.create"}, spec(record="Always"), False),
    ],
)
def test_a_record_lost_to_a_restart_is_written_from_last_run(
    status: dict[str, Any], definition: ProcessDefinitionSpec | None, lost: bool
) -> None:
    assert (lost_record(META, status, lambda _: definition) is not None) is lost


LABELS = {"kattle.dev/type": "widget", "kattle.dev/resource": "w1"}
OWNER = {"apiVersion": "test.kattle.dev/v1", "kind": "Widget", "name": "w1", "uid": "u-1"}


@pytest.mark.parametrize(
    ("meta", "owner", "adopted"),
    [
        # the operator's own record: labelled from its create, owned from its end
        ({"labels": LABELS}, OWNER, {"ownerReferences": [OWNER]}),
        # a user's ProcessInstance applied with neither
        ({}, OWNER, {"labels": LABELS, "ownerReferences": [OWNER]}),
        # only the label it lacks; the user's own labels stay (a merge patch)
        (
            {"labels": {"team": "a", "kattle.dev/type": "widget"}},
            OWNER,
            {"labels": {"kattle.dev/resource": "w1"}, "ownerReferences": [OWNER]},
        ),
        # already owned (a record from before, or a user's own owner): left as it is
        ({"labels": LABELS, "ownerReferences": [{"uid": "other"}]}, OWNER, {}),
        # an object never seen and with no uid in the run: no owner to name
        ({"labels": LABELS}, None, {}),
    ],
)
def test_an_ended_record_adopts_the_labels_it_lacks_and_its_object_as_owner(
    meta: dict[str, Any], owner: dict[str, Any] | None, adopted: dict[str, Any]
) -> None:
    assert adoption(meta, LABELS, owner) == adopted
