"""What a run's end writes, table-driven: to the object, the record and its Event; and the
one deletion rule the runner and the object controller share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kattle.api.processdefinition import ProcessDefinition
from kattle.machine import deletion, ending, status

AT = datetime(2026, 1, 1, tzinfo=UTC)
RUN = ending.Run("web.start-x", "instance.start", "stopped", AT, AT)
CLEARED = {"process": None, "activeRun": None}


@pytest.mark.parametrize(
    ("decided", "phase", "reason", "writes", "event"),
    [
        (
            ending.done(
                RUN,
                state_field="state",
                transitioning="starting",
                state="running",
                handler_writes={"ip": "10.0.0.1"},
            ),
            "Succeeded",
            "Done",
            {
                "ip": "10.0.0.1",
                "state": "running",
                "transitioning": "no",
                "transitioningMessage": None,
                "previousState": None,
                **CLEARED,
            },
            ("Done", "instance.start: stopped -> starting -> running (web.start-x)", "Normal"),
        ),
        (
            ending.chained(RUN, target="instance.check", child="c", handler_writes={}),
            "Succeeded",
            "Chained",
            {"transitioning": "yes", "process": "instance.check", "activeRun": "c"},
            ("Chained", "instance.start -> instance.check (c)", "Normal"),
        ),
        (
            ending.on_error(RUN, message="down", target="instance.error", child="e"),
            "Failed",
            "OnError",
            {
                "transitioning": "error",
                "transitioningMessage": "down",
                "process": "instance.error",
                "activeRun": "e",
            },
            ("ProcessFailed", "instance.start failed, instance.error takes over: down", "Warning"),
        ),
        (
            ending.exhausted(RUN, message="down"),
            "Failed",
            "RetriesExhausted",
            {"transitioning": "error", "transitioningMessage": "down", **CLEARED},
            ("ProcessFailed", "instance.start: down", "Warning"),
        ),
        (
            ending.canceled(RUN, message="not here", handed_over=True),
            "Canceled",
            "Canceled",
            {"transitioning": "error", "transitioningMessage": "not here", **CLEARED},
            ("ProcessCanceled", "instance.start: not here", "Warning"),
        ),
        (
            ending.canceled(RUN, message="not here", handed_over=False),
            "Canceled",
            "Canceled",
            None,
            ("ProcessCanceled", "instance.start: not here", "Warning"),
        ),
    ],
)
def test_what_an_end_writes(
    decided: ending.Ending,
    phase: str,
    reason: str,
    writes: dict[str, Any] | None,
    event: tuple[str, str, str],
) -> None:
    assert (decided.phase, decided.reason) == (phase, reason)
    written = dict(decided.writes) if decided.writes is not None else None
    last = written.pop("lastRun", None) if written is not None else None
    assert written == writes
    if writes is not None and reason != "Canceled":
        # Every end that writes the object names the run in lastRun: a run whose operator
        # dies before its record still ends from it.
        assert last is not None
        assert (last["name"], last["phase"], last["exitReason"]) == (RUN.name, phase, reason)
    assert decided.event is not None
    assert (decided.event.reason, decided.event.note, decided.event.type) == event


def test_the_held_patch_tests_the_lock_first() -> None:
    assert status.held_patch("me", {"a/b": 1, "transitioning": "no"}) == [
        {"op": "test", "path": "/status/activeRun", "value": "me"},
        {"op": "add", "path": "/status/a~1b", "value": 1},
        {"op": "add", "path": "/status/transitioning", "value": "no"},
    ]


def test_handler_writes_merge_into_the_objects_maps() -> None:
    current = {"net": {"ip": "1", "mask": "24"}, "n": 1}
    assert status.handler_writes(current, {"net": {"ip": "2"}, "n": {"x": 1}}) == {
        "net": {"ip": "2", "mask": "24"},
        "n": {"x": 1},
    }


def _pd(name: str, start: list[str], done: str) -> ProcessDefinition:
    return ProcessDefinition.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "resourceType": "instance",
                "start": start,
                "transitioning": f"{done}-ing",
                "done": done,
                "trigger": "delete",
            },
        }
    )


REMOVE = _pd("instance.remove", ["stopped"], "removed")
PURGE = _pd("instance.purge", ["removed"], "purged")
BOTH = [REMOVE, PURGE]


def _ran(process: str, phase: str = "Succeeded") -> dict[str, Any]:
    return {"name": "r", "process": process, "phase": phase}


@pytest.mark.parametrize(
    ("status_", "deleting", "next_process", "step", "process"),
    [
        ({"state": "stopped"}, [], None, deletion.Step.GO, None),  # no delete processes
        ({"state": "stopped", "activeRun": "x"}, BOTH, REMOVE, deletion.Step.WAIT, None),
        ({"state": "stopped"}, BOTH, REMOVE, deletion.Step.START, "instance.remove"),
        # Cattle's remove, then purge.
        (
            {"state": "removed", "lastRun": _ran("instance.remove")},
            BOTH,
            PURGE,
            deletion.Step.START,
            "instance.purge",
        ),
        (
            {"state": "purged", "lastRun": _ran("instance.purge")},
            BOTH,
            None,
            deletion.Step.GO,
            None,
        ),
        # A failed delete run does not let the object go.
        (
            {"state": "purged", "lastRun": _ran("instance.purge", "Failed")},
            BOTH,
            None,
            deletion.Step.HOLD,
            None,
        ),
        ({"state": "running"}, BOTH, None, deletion.Step.HOLD, None),
    ],
)
def test_the_deletion_rule(
    status_: dict[str, Any],
    deleting: list[ProcessDefinition],
    next_process: ProcessDefinition | None,
    step: deletion.Step,
    process: str | None,
) -> None:
    rule = deletion.decide(status_, deleting, next_process, lambda field: None)
    assert (rule.step, rule.process) == (step, process), rule


def test_a_held_deletion_says_why() -> None:
    rule = deletion.decide({"state": "running"}, BOTH, None, lambda field: None)
    assert rule.message == (
        "deletion waits: no delete process starts from state 'running' (instance.remove starts "
        "from stopped; instance.purge starts from removed); run a process that moves the "
        "object to one of those states"
    )


def test_small_process_data_rides_on_the_objects_last_run_and_large_data_does_not() -> None:
    """So a run whose operator is killed between its object's last write and its record
    keeps its data (the record is completed from lastRun); large data would bloat objects."""
    small = {"ip": "10.0.0.7", "pre": 1}
    large = {"blob": "x" * ending.LAST_RUN_DATA_MAX}
    for data, kept in [(small, small), (large, None), ({}, None)]:
        run = ending.Run("web.start-x", "instance.start", "stopped", AT, AT, data)
        writes = ending.done(
            run, state_field="state", transitioning="starting", state="running", handler_writes={}
        ).writes
        assert writes is not None
        assert writes["lastRun"].get("data") == kept
