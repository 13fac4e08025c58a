"""What one handler call comes to: a pure decision over the call's result and the handler's
retry rules, so the runner only has to act on it.

A call ends in one of five ways (Cattle's): it succeeded (or chained), it asked to be called
again later, it failed and is retried after a backoff, it failed for the last time
(exhausted: the run fails or hands over to onError), or it failed for the last time under
`failurePolicy: Ignore` (ignored: the run goes on). An error the reply calls `permanent` is
the last attempt whatever the retry limit. Every failed attempt, the last included,
is reported with one `HandlerFailed` Event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kattle.machine.backoff import retry_delay


class Kind(enum.Enum):
    SUCCEEDED = "succeeded"
    RETRY_AFTER = "retry after"  # the handler asked to be called again in N seconds
    RETRY = "retry"  # failed; called again after Cattle's backoff
    EXHAUSTED = "exhausted"  # failed for the last time
    IGNORED = "ignored"  # failed for the last time, with failurePolicy Ignore


@dataclass(frozen=True)
class CallResult:
    """What came back from one call, every source of failure already a message."""

    handler: str
    attempt: int
    error: str | None = None  # unreachable, timeout, bad reply, error reply, bad chain...
    retry_after: int | None = None  # the reply's retryAfterSeconds (ignored with a chain)
    chains: bool = False
    permanent: bool = False  # the reply said its error is for good: no retries
    timed_out: bool = False  # no answer within the handler's timeout


@dataclass(frozen=True)
class Rules:
    retry_limit: int
    ignore_failures: bool  # failurePolicy: Ignore


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    message: str = ""
    delay: float = 0.0  # before the next attempt (RETRY_AFTER, RETRY)
    # EXHAUSTED: the run's exit reason, telling a timeout and a permanent error apart from
    # an error that outlasted its retries.
    reason: str = "RetriesExhausted"

    @property
    def failed(self) -> bool:
        """A failed attempt: one `HandlerFailed` Event and `transitioning: error`."""
        return self.kind in (Kind.RETRY, Kind.EXHAUSTED, Kind.IGNORED)


def decide(result: CallResult, rules: Rules) -> Outcome:
    """The outcome of attempt `result.attempt` (1 for the first call of the step)."""
    error = result.error
    permanent = error is not None and result.permanent
    last = result.attempt > rules.retry_limit or permanent
    if permanent:
        error = f"{error} (permanent: not retried)"
    if error is None and result.retry_after is not None and not result.chains:
        if not last:
            return Outcome(
                Kind.RETRY_AFTER,
                f"handler {result.handler} asked to be called again in {result.retry_after}s",
                float(result.retry_after),
            )
        error = (
            f"handler {result.handler} asked to retry more than its retryLimit of "
            f"{rules.retry_limit} times"
        )
    if error is None:
        return Outcome(Kind.SUCCEEDED)
    if not last:
        return Outcome(Kind.RETRY, error, retry_delay(result.attempt))
    if rules.ignore_failures:
        return Outcome(Kind.IGNORED, error)
    reason = "PermanentError" if permanent else "TimedOut" if result.timed_out else None
    return Outcome(Kind.EXHAUSTED, error, reason=reason or "RetriesExhausted")


def failed_event(outcome: Outcome) -> str:
    """The note of the `HandlerFailed` Event of a failed attempt."""
    if outcome.kind is Kind.RETRY:
        return f"{outcome.message}; retrying in {outcome.delay:.1f}s"
    if outcome.kind is Kind.IGNORED:
        return f"{outcome.message}; the last attempt, ignored (failurePolicy Ignore)"
    return f"{outcome.message}; the last attempt"
