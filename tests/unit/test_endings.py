"""What a run's end writes, table-driven: to the object, the record and its Event; and the
one deletion rule the runner and the object controller share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kattle.api.generated import RunSummary
from kattle.api.processdefinition import ProcessDefinition
from kattle.api.processinstance import ProcessInstanceStatus
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


# -- a run completed from its object's lastRun, and a deleted run's way out ----------------

LATER = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
WAY = ending.Way("state", "starting", "running", on_error="instance.error")
TOOK = {"field": "state", "from": "stopped", "to": "starting", "time": AT}


def _summary(reason: str, phase: str = "Succeeded", **extra: Any) -> RunSummary:
    return RunSummary.model_validate(
        {
            "name": "web.start-x",
            "process": "instance.start",
            "phase": phase,
            "exitReason": reason,
            "fromState": "stopped",
            "startTime": AT,
            "endTime": LATER,
            **extra,
        }
    )


def _resumed(
    summary: RunSummary, record: dict[str, Any], *, holder_process: str | None
) -> ending.Resumed:
    return ending.resumed(
        summary,
        ProcessInstanceStatus.model_validate(record),
        run="web.start-x",
        process="instance.start",
        way=WAY,
        holder_process=holder_process,
        now=LATER,
    )


@pytest.mark.parametrize(
    ("summary", "record", "expected"),
    [
        # Killed after its done write: both transitions, at the summary's times.
        (
            _summary("Done"),
            {},
            (
                "Succeeded",
                "Done",
                "",
                [("stopped", "starting", AT), ("starting", "running", LATER)],
                ("Done", "instance.start: stopped -> starting -> running (web.start-x)"),
            ),
        ),
        # The take was recorded already: only the done transition is added.
        (
            _summary("Done"),
            {"transitions": [TOOK]},
            (
                "Succeeded",
                "Done",
                "",
                [("starting", "running", LATER)],
                ("Done", "instance.start: stopped -> starting -> running (web.start-x)"),
            ),
        ),
        # Chained: no done transition; the message and Event name the child and the
        # process the object names now.
        (
            _summary("Chained", chainedTo="c"),
            {"transitions": [TOOK]},
            (
                "Succeeded",
                "Chained",
                "chained: c",
                [],
                ("Chained", "instance.start -> instance.check (c)"),
            ),
        ),
        (
            _summary("OnError", "Failed", chainedTo="e"),
            {"message": "down"},
            (
                "Failed",
                "OnError",
                "down",
                [("stopped", "starting", AT)],
                ("ProcessFailed", "instance.start failed, instance.error takes over: down"),
            ),
        ),
        (
            _summary("RetriesExhausted", "Failed"),
            {"message": "down", "transitions": [TOOK]},
            ("Failed", "RetriesExhausted", "down", [], ("ProcessFailed", "instance.start: down")),
        ),
        # A summary of any phase but Succeeded ends the run Failed.
        (
            _summary("Canceled", "Canceled"),
            {"message": "gone", "transitions": [TOOK]},
            ("Failed", "Canceled", "gone", [], ("ProcessFailed", "instance.start: gone")),
        ),
    ],
)
def test_a_run_completed_from_its_objects_last_run(
    summary: RunSummary, record: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    decided = _resumed(summary, record, holder_process="instance.check")
    assert decided.event is not None
    assert (
        decided.phase,
        decided.reason,
        decided.message,
        list(decided.transitions),
        (decided.event.reason, decided.event.note),
    ) == expected


@pytest.mark.parametrize(
    ("summary", "record", "kept"),
    [
        # The record's own fields win; the summary fills what it lacks.
        (_summary("Done", data={"ip": "1"}), {}, (AT, None, {"ip": "1"})),
        (
            _summary("Done", data={"ip": "1"}),
            {"startTime": LATER, "data": {"ip": "2"}},
            (LATER, None, {"ip": "2"}),
        ),
        (_summary("Chained", chainedTo="c"), {"chainedTo": "old"}, (AT, "c", {})),
        (_summary("Done"), {"chainedTo": "old"}, (AT, "old", {})),
    ],
)
def test_a_completed_record_keeps_its_own_fields_and_fills_the_rest(
    summary: RunSummary, record: dict[str, Any], kept: tuple[Any, ...]
) -> None:
    decided = _resumed(summary, record, holder_process=None)
    assert (decided.start_time, decided.chained_to, decided.data) == kept


def test_an_unknown_holder_or_on_error_process_is_named_as_unknown() -> None:
    way = ending.Way("state", "starting", "running")
    for summary, note in (
        (_summary("Chained", chainedTo="c"), "instance.start -> ? (c)"),
        (_summary("OnError", "Failed", chainedTo="e"), "instance.start failed, ? takes over: x"),
    ):
        decided = ending.resumed(
            summary,
            ProcessInstanceStatus.model_validate({"message": "x"}),
            run="web.start-x",
            process="instance.start",
            way=way,
            holder_process=None,
            now=LATER,
        )
        assert decided.event is not None
        assert decided.event.note == note


def _process(name: str, field: str = "state", **spec: Any) -> ProcessDefinition:
    return ProcessDefinition.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"resourceType": "instance", "stateField": field, **spec},
        }
    )


START = _process("instance.start", start=["stopped"], transitioning="starting", done="running")
STOP = _process(
    "instance.stop", start=["starting", "running"], transitioning="stopping", done="stopped"
)
FIX = _process("instance.fix", start=["starting"], transitioning="fixing", done="stopped")
ALLOCATE = _process(
    "instance.allocate", "allocation", start=["starting"], transitioning="allocating", done="on"
)
UPDATE = _process(
    "instance.update",
    stateMap=[
        {"start": "stopped", "transitioning": "updating-stopped", "done": "stopped"},
        {"start": "running", "transitioning": "updating-running", "done": "running"},
    ],
)
ALL = [START, STOP, FIX, ALLOCATE, UPDATE]


@pytest.mark.parametrize(
    ("definition", "state", "left", "out"),
    [
        # Left in its transitioning state: the process itself, and those starting there
        # of the same state field (not `allocate`, of another field).
        (START, "starting", "starting", ["instance.fix", "instance.start", "instance.stop"]),
        # The object shows another state (a newer body not seen): the process's own.
        (START, "running", "starting", ["instance.fix", "instance.start", "instance.stop"]),
        (START, None, "starting", ["instance.fix", "instance.start", "instance.stop"]),
        # A state map: the run's own transitioning state, where only it starts.
        (UPDATE, "updating-running", "updating-running", ["instance.update"]),
        (UPDATE, "stopped", "updating-stopped", ["instance.update"]),
        # The definition is gone: nothing is known of where it left the object.
        (None, "starting", None, []),
    ],
)
def test_where_a_deleted_run_leaves_its_object_and_the_ways_out(
    definition: ProcessDefinition | None, state: str | None, left: str | None, out: list[str]
) -> None:
    transitioning = ending.left_in(definition, state)
    assert transitioning == left
    assert ending.ways_out(definition, transitioning, ALL) == out
