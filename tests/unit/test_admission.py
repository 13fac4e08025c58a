"""Admission, table-driven: every rule a run meets before it takes its object, on plain data.

Each row gives the object's status (None: gone), what the run's record says, and the
answers to the facts that cost a read; it checks the verdict, whom a waiting run waits for,
and which facts were asked for (each one is an API read the runner makes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from kattle.api.processdefinition import ProcessDefinition
from kattle.machine.admission import Decision, Fact, Facts, Verdict, decide

START = ProcessDefinition.model_validate(
    {
        "metadata": {"name": "instance.start"},
        "spec": {
            "resourceType": "instance",
            "start": ["stopped", "creating"],
            "transitioning": "starting",
            "done": "running",
        },
    }
).spec
HOLDER, PARENT, PREVIOUS = Fact.HOLDER_RUNNING, Fact.PARENT_RUNNING, Fact.PREVIOUS_RUNNING


def ask(
    status: Mapping[str, Any] | None, answers: Mapping[Fact, bool], **facts: Any
) -> tuple[Decision, list[Fact]]:
    """Decides as the runner does: answering each fact asked for, in turn."""
    current = Facts(
        run="me", process="instance.start", spec=START, initial="requested", status=status, **facts
    )
    asked: list[Fact] = []
    while (decision := decide(current)).verdict is Verdict.NEED:
        assert decision.need is not None, decision
        assert decision.need not in asked, decision
        asked.append(decision.need)
        current = current.knowing(decision.need, answers[decision.need])
    return decision, asked


@pytest.mark.parametrize(
    ("status", "facts", "answers", "verdict", "waits_for", "asked"),
    [
        ({"state": "stopped"}, {}, {}, Verdict.ADMIT, None, []),
        # Already in the done state (Cattle's ALREADY_DONE): succeeds, takes nothing.
        ({"state": "running"}, {}, {}, Verdict.ALREADY_DONE, None, []),
        ({"state": "error"}, {}, {}, Verdict.CANCEL, None, []),
        ({}, {}, {}, Verdict.CANCEL, None, []),  # a new object is in its initial state
        # ... but not after this run took the object and lost it (that is LOST's case).
        ({"state": "running"}, {"took_before": True}, {}, Verdict.CANCEL, None, []),
        # Left in the process's transitioning state by a run that failed or was deleted:
        # the next run of the process takes it again (Cattle resumes the process).
        ({"state": "starting", "transitioning": "error"}, {}, {}, Verdict.ADMIT, None, []),
        ({"state": "starting", "activeRun": "me"}, {}, {}, Verdict.CANCEL, None, []),
        # Held by a run that started this one (related runs): waiting would never end.
        (
            {"state": "stopped", "activeRun": "grandparent"},
            {"ancestors": ("grandparent", "parent")},
            {},
            Verdict.CYCLE,
            "grandparent",
            [],
        ),
        # Held by a run that did not start this one: wait as usual.
        (
            {"state": "stopped", "activeRun": "x"},
            {"ancestors": ("parent",)},
            {HOLDER: True},
            Verdict.WAIT,
            "x",
            [HOLDER],
        ),
        (None, {}, {}, Verdict.GONE, None, []),
        # Another run holds it: waiting only while that run is running (a stale lock is not).
        ({"state": "stopped", "activeRun": "x"}, {}, {HOLDER: True}, Verdict.WAIT, "x", [HOLDER]),
        (
            {"state": "stopped", "activeRun": "x"},
            {},
            {HOLDER: False},
            Verdict.ADMIT,
            None,
            [HOLDER],
        ),
        ({"state": "running", "activeRun": "x"}, {}, {HOLDER: True}, Verdict.WAIT, "x", [HOLDER]),
        # The operator restarted mid-run.
        (
            {"state": "starting", "activeRun": "me", "process": "instance.start"},
            {"took_before": True},
            {},
            Verdict.RESUME,
            None,
            [],
        ),
        # Handed over (chain, onError): admitted from a start state, canceled elsewhere.
        (
            {"state": "creating", "activeRun": "me", "process": "instance.create"},
            {},
            {},
            Verdict.ADMIT,
            None,
            [],
        ),
        ({"state": "running", "activeRun": "me"}, {}, {}, Verdict.CANCEL, None, []),
        # Handed over by a parent whose record is not final: the parent finishes first.
        (
            {"state": "creating", "activeRun": "me"},
            {"parent": "p"},
            {PARENT: True},
            Verdict.WAIT,
            "p",
            [PARENT],
        ),
        (
            {"state": "creating", "activeRun": "me"},
            {"parent": "p"},
            {PARENT: False},
            Verdict.ADMIT,
            None,
            [PARENT],
        ),
        # The operator stopped after the run's last write to the object, before its record.
        ({"state": "running", "lastRun": {"name": "me"}}, {}, {}, Verdict.FINISHED, None, []),
        ({"state": "stopped", "lastRun": {"name": "me"}}, {}, {}, Verdict.FINISHED, None, []),
        (
            {"state": "x", "activeRun": "child", "lastRun": {"name": "me"}},
            {},
            {},
            Verdict.FINISHED,
            None,
            [],
        ),
        # The run before ended on the object, not yet in its record: it goes first.
        (
            {"state": "stopped", "lastRun": {"name": "o"}},
            {},
            {PREVIOUS: True},
            Verdict.WAIT,
            "o",
            [PREVIOUS],
        ),
        (
            {"state": "stopped", "lastRun": {"name": "o"}},
            {},
            {PREVIOUS: False},
            Verdict.ADMIT,
            None,
            [PREVIOUS],
        ),
        # Took the object before and lost it since: never run twice.
        ({"state": "stopped"}, {"took_before": True}, {}, Verdict.LOST, None, []),
    ],
)
def test_admission(
    status: Mapping[str, Any] | None,
    facts: dict[str, Any],
    answers: dict[Fact, bool],
    verdict: Verdict,
    waits_for: str | None,
    asked: list[Fact],
) -> None:
    decision, seen = ask(status, answers, **facts)
    assert (decision.verdict, decision.waits_for, seen) == (verdict, waits_for, asked), decision


def test_a_cancel_says_why() -> None:
    decision, _ = ask({"state": "error"}, {})
    assert (
        decision.reason == "instance.start starts from stopped, creating, and the object is error"
    )


def test_a_handed_over_run_that_cannot_start_lets_go() -> None:
    decision, _ = ask({"state": "running", "activeRun": "me"}, {})
    assert decision.handed_over
    decision, _ = ask({"state": "running"}, {})
    assert not decision.handed_over
