"""The outcome of one handler call, table-driven: succeeded, retry after, retry, exhausted,
ignored; and one `HandlerFailed` Event for every failed attempt, the last one included."""

from __future__ import annotations

import pytest

from kattle.machine.backoff import retry_delay
from kattle.machine.outcome import CallResult, Kind, Rules, decide, failed_event

ONCE, TWICE, IGNORE = Rules(0, False), Rules(1, False), Rules(1, True)


@pytest.mark.parametrize(
    ("result", "rules", "kind", "delay"),
    [
        (CallResult("h", 1), ONCE, Kind.SUCCEEDED, 0.0),
        (CallResult("h", 1, chains=True, retry_after=5), ONCE, Kind.SUCCEEDED, 0.0),
        (CallResult("h", 1, retry_after=5), TWICE, Kind.RETRY_AFTER, 5.0),
        (CallResult("h", 2, retry_after=5), TWICE, Kind.EXHAUSTED, 0.0),  # over its limit
        (CallResult("h", 1, retry_after=5), ONCE, Kind.EXHAUSTED, 0.0),
        (CallResult("h", 1, error="down"), TWICE, Kind.RETRY, retry_delay(1)),
        (CallResult("h", 2, error="down"), TWICE, Kind.EXHAUSTED, 0.0),
        (CallResult("h", 1, error="down"), ONCE, Kind.EXHAUSTED, 0.0),
        # a permanent error is the last attempt whatever the limit; Ignore still ignores it
        (
            CallResult("h", 1, error="bad input", permanent=True),
            Rules(5, False),
            Kind.EXHAUSTED,
            0.0,
        ),
        (CallResult("h", 1, error="bad input", permanent=True), IGNORE, Kind.IGNORED, 0.0),
        (CallResult("h", 1, permanent=True), TWICE, Kind.SUCCEEDED, 0.0),  # no error: nothing
        (CallResult("h", 1, error="down"), IGNORE, Kind.RETRY, retry_delay(1)),
        (CallResult("h", 2, error="down"), IGNORE, Kind.IGNORED, 0.0),
        (CallResult("h", 2, retry_after=1), IGNORE, Kind.IGNORED, 0.0),
    ],
)
def test_outcome(result: CallResult, rules: Rules, kind: Kind, delay: float) -> None:
    outcome = decide(result, rules)
    assert (outcome.kind, outcome.delay) == (kind, delay), outcome


@pytest.mark.parametrize(("rules", "failures"), [(ONCE, 1), (TWICE, 2), (Rules(3, False), 4)])
def test_every_failed_attempt_is_reported_the_last_included(rules: Rules, failures: int) -> None:
    outcomes = []
    for attempt in range(1, 10):
        outcomes.append(decide(CallResult("h", attempt, error="down"), rules))
        if outcomes[-1].kind is not Kind.RETRY:
            break
    assert [o.failed for o in outcomes] == [True] * failures
    assert failed_event(outcomes[-1]) == "down; the last attempt"


def test_messages() -> None:
    assert decide(CallResult("h", 1, retry_after=3), TWICE).message == (
        "handler h asked to be called again in 3s"
    )
    assert decide(CallResult("h", 2, retry_after=3), TWICE).message == (
        "handler h asked to retry more than its retryLimit of 1 times"
    )
    assert failed_event(decide(CallResult("h", 1, error="down"), TWICE)) == (
        f"down; retrying in {retry_delay(1):.1f}s"
    )


def test_a_permanent_error_says_so() -> None:
    outcome = decide(CallResult("h", 1, error="bad input", permanent=True), TWICE)
    assert outcome.message == "bad input (permanent: not retried)"


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (CallResult("h", 2, error="down"), "RetriesExhausted"),
        (CallResult("h", 2, error="no answer in 10s", timed_out=True), "TimedOut"),
        (CallResult("h", 1, error="bad input", permanent=True), "PermanentError"),
    ],
)
def test_the_last_failure_says_what_kind_of_failure_it_was(result: CallResult, reason: str) -> None:
    outcome = decide(result, TWICE)
    assert (outcome.kind, outcome.reason) == (Kind.EXHAUSTED, reason)
