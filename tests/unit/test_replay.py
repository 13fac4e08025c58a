"""Replay (Cattle's processinstance.replay): when a failed run may be replayed, which steps
the replay skips, and the admission of a replay run, on plain data."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.api.processdefinition import ProcessDefinition
from kattle.api.processinstance import HandlerCall
from kattle.cli.kube import CommandError
from kattle.cli.retry import run_name
from kattle.machine.admission import Facts, Verdict, decide
from kattle.machine.replay import done_steps, refusal, replay_name, wanted

START = ProcessDefinition.model_validate(
    {
        "metadata": {"name": "instance.start"},
        "spec": {
            "resourceType": "instance",
            "start": ["stopped"],
            "transitioning": "starting",
            "done": "running",
        },
    }
).spec
FAILED = {
    "metadata": {"name": "web.start-1", "annotations": {"kattle.dev/replay": "t1"}},
    "spec": {"process": "instance.start", "resource": {"name": "web", "uid": "u1"}},
    "status": {"phase": "Failed", "exitReason": "RetriesExhausted"},
}
LEFT = {
    "metadata": {"uid": "u1"},
    "status": {
        "state": "starting",
        "transitioning": "error",
        "lastRun": {"name": "web.start-1", "process": "instance.start"},
    },
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


@pytest.mark.parametrize(
    ("pi", "obj", "refused"),
    [
        (FAILED, LEFT, None),
        (with_(FAILED, status={"phase": "Failed", "exitReason": "TimedOut"}), LEFT, None),
        (with_(FAILED, status={"phase": "Failed", "exitReason": "PermanentError"}), LEFT, None),
        (with_(FAILED, status={"phase": "Succeeded", "exitReason": "Done"}), LEFT,
         "web.start-1 ended Succeeded (Done): only a run that failed"),
        # onError took over: the object is not where the run left it.
        (with_(FAILED, status={"phase": "Failed", "exitReason": "OnError"}), LEFT,
         "ended Failed (OnError)"),
        (with_(FAILED, status={"phase": "Failed", "exitReason": "Invalid"}), LEFT,
         "ended Failed (Invalid)"),
        (FAILED, None, "web.start-1's object web is gone"),
        (FAILED, with_(LEFT, metadata={"uid": "u2"}), "web.start-1's object web is gone"),
        (FAILED, with_(LEFT, status={**LEFT["status"], "activeRun": "web.stop-2"}),
         "the object has moved on: web.stop-2 holds it"),
        (FAILED, with_(LEFT, status={**LEFT["status"], "lastRun": {
            "name": "web.start-2", "process": "instance.start"}}),
         "the object has moved on: instance.start (web.start-2) ran on it since"),
        (FAILED, with_(LEFT, status={**LEFT["status"], "state": "stopped"}),
         "the object has moved on: it is stopped, not where web.start-1 left it"),
    ],
)  # fmt: skip
def test_when_a_run_may_be_replayed(
    pi: dict[str, Any], obj: dict[str, Any] | None, refused: str | None
) -> None:
    said = refusal(pi, obj, START, "requested")
    if refused is None:
        assert said is None
    else:
        assert said is not None
        assert refused in said


def test_without_its_definition_a_run_cannot_be_replayed() -> None:
    assert refusal(FAILED, LEFT, None, None) == (
        "web.start-1's process instance.start has no ProcessDefinition any more"
    )


def test_each_request_is_answered_once() -> None:
    assert wanted(FAILED) == "t1"
    answered = with_(FAILED, status={**FAILED["status"], "replay": {"requested": "t1"}})
    assert wanted(answered) is None
    again = with_(
        answered, metadata={"name": "web.start-1", "annotations": {"kattle.dev/replay": "t2"}}
    )
    assert wanted(again) == "t2"
    assert wanted(with_(FAILED, metadata={"name": "web.start-1"})) is None


def test_a_request_names_its_replay_the_same_every_time() -> None:
    assert replay_name("web.start-1", "t1") == replay_name("web.start-1", "t1")
    assert replay_name("web.start-1", "t1") != replay_name("web.start-1", "t2")
    assert len(replay_name("x" * 253, "t1")) <= 253


def call(key: str, outcome: str) -> HandlerCall:
    return HandlerCall.model_validate(
        {
            "handler": key.rsplit("/", 1)[1],
            "phase": "handler",
            "attempt": 1,
            "idempotencyKey": key,
            "start": "2026-12-05T00:00:00Z",
            "outcome": outcome,
        }
    )


def test_the_steps_that_succeeded_are_skipped() -> None:
    calls = [
        call("u1/0/check", "Succeeded"),
        call("u1/1/alloc", "Error"),
        call("u1/1/alloc", "Succeeded"),
        call("u1/2/boot", "Error"),
    ]
    plan = [(0, "check"), (1, "alloc"), (2, "boot"), (3, "notify")]
    assert done_steps(plan, "u1", calls) == {0, 1}
    # A handler moved in the plan since is called again: same handler, another step.
    assert done_steps([(0, "alloc"), (1, "check")], "u1", calls) == set()


@pytest.mark.parametrize(
    ("status", "verdict", "reason"),
    [
        (LEFT["status"], Verdict.ADMIT, ""),
        ({**LEFT["status"], "lastRun": {"name": "web.stop-3"}}, Verdict.CANCEL,
         "the object has moved on: web.stop-3 ran since web.start-1"),
        ({**LEFT["status"], "state": "stopped"}, Verdict.CANCEL,
         "the object has moved on: it is stopped, not where web.start-1 left it"),
        # Taken already (the operator restarted): the replay goes on.
        ({**LEFT["status"], "activeRun": "me", "process": "instance.start"}, Verdict.RESUME, ""),
    ],
)  # fmt: skip
def test_a_replay_run_takes_the_object_only_where_the_failed_run_left_it(
    status: dict[str, Any], verdict: Verdict, reason: str
) -> None:
    facts = Facts(
        run="me",
        process="instance.start",
        spec=START,
        initial="requested",
        status=status,
        replay_of="web.start-1",
    )
    while (decision := decide(facts)).verdict is Verdict.NEED:
        assert decision.need is not None
        facts = facts.knowing(decision.need, False)  # the failed run has ended
    assert decision.verdict is verdict, decision
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("target", "name"),
    [("web.start-1", "web.start-1"), ("pi/web.start-1", "web.start-1"),
     ("processinstance.kattle.dev/web.start-1", "web.start-1")],
)  # fmt: skip
def test_retry_names_a_run(target: str, name: str) -> None:
    assert run_name(target) == name


@pytest.mark.parametrize("target", ["instance/web", "pi/"])
def test_retry_refuses_what_is_not_a_run(target: str) -> None:
    with pytest.raises(CommandError):
        run_name(target)
