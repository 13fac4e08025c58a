"""What a run's end writes: to its object, to its record, and the Event it leaves.

One pure function per way a run ends. The runner writes what they return, in order: the
object (with `lastRun`, so a run whose operator dies before its record still ends right),
the run's Event, then its final record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from kattle.api.generated import RunSummary
from kattle.api.processinstance import ExitReason, RunPhase
from kattle.machine import status


@dataclass(frozen=True)
class Event:
    reason: str
    note: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclass(frozen=True)
class Run:
    """The ending run, as far as its end needs to know."""

    name: str
    process: str
    from_state: str | None
    start_time: datetime | None
    end: datetime
    data: Mapping[str, Any] | None = None  # the process data, for the object's lastRun


@dataclass(frozen=True)
class Ending:
    phase: RunPhase
    reason: ExitReason
    message: str
    event: Event | None
    # The object's status writes, made while the run holds it; None: no write.
    writes: dict[str, Any] | None = None
    chained_to: str | None = None
    transitions: tuple[tuple[str, str], ...] = field(default=())  # (from, to) to record


def summary(
    run: Run, phase: RunPhase, reason: ExitReason, child: str | None = None
) -> dict[str, Any]:
    return RunSummary(
        data=kept_data(run.data),
        name=run.name,
        process=run.process,
        phase=phase,
        exit_reason=reason,
        end_time=run.end,
        from_state=run.from_state,
        start_time=run.start_time,
        chained_to=child,
    ).to_wire()


# Process data this small rides on the object's lastRun (one write the run makes anyway),
# so a run whose operator dies between the object's write and its record keeps its data;
# larger data would bloat every object, and is then only in the run's record.
LAST_RUN_DATA_MAX = 4096


def kept_data(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not data or len(json.dumps(data, separators=(",", ":"))) > LAST_RUN_DATA_MAX:
        return None
    return dict(data)


def done(
    run: Run, *, state_field: str, transitioning: str, state: str, handler_writes: Mapping[str, Any]
) -> Ending:
    writes = {**handler_writes, **status.done(state_field=state_field, state=state)}
    path = " -> ".join(s for s in (run.from_state, transitioning, state) if s)
    return Ending(
        "Succeeded",
        "Done",
        "",
        Event("Done", f"{run.process}: {path} ({run.name})"),
        status.with_last_run(writes, summary(run, "Succeeded", "Done")),
        transitions=((transitioning, state),),
    )


def chained(run: Run, *, target: str, child: str, handler_writes: Mapping[str, Any]) -> Ending:
    writes = {
        **handler_writes,
        **status.fields(transitioning="yes"),
        **status.hand_over(target, child),
    }
    return Ending(
        "Succeeded",
        "Chained",
        f"chained {target} ({child})",
        Event("Chained", f"{run.process} -> {target} ({child})"),
        status.with_last_run(writes, summary(run, "Succeeded", "Chained", child)),
        chained_to=child,
    )


def on_error(run: Run, *, message: str, target: str, child: str) -> Ending:
    writes = {**status.failing(message), **status.hand_over(target, child)}
    return Ending(
        "Failed",
        "OnError",
        message,
        Event("ProcessFailed", f"{run.process} failed, {target} takes over: {message}", "Warning"),
        status.with_last_run(writes, summary(run, "Failed", "OnError", child)),
        chained_to=child,
    )


def exhausted(run: Run, *, message: str, reason: ExitReason = "RetriesExhausted") -> Ending:
    """Failed for good while holding the object: it stays transitioning, with the error.
    `Cycle` when a related run was refused as a cycle (retrying could not help)."""
    return Ending(
        "Failed",
        reason,
        message,
        Event("ProcessFailed", f"{run.process}: {message}", "Warning"),
        status.with_last_run(status.let_go(message), summary(run, "Failed", reason)),
    )


def already_done(run: Run, *, state: str) -> Ending:
    """Free and in the done state already: nothing is written to the object and no Event
    is posted (a related run's parent lists it; the run's record says it)."""
    return Ending("Succeeded", "AlreadyDone", f"already {state}", None)


def cycle(run: Run, *, message: str) -> Ending:
    """Held by a run that started this one: never taken, so nothing to let go of."""
    return Ending(
        "Failed",
        "Cycle",
        message,
        Event("ProcessFailed", f"{run.process}: {message}", "Warning"),
    )


def canceled(run: Run, *, message: str, handed_over: bool) -> Ending:
    """Not in a start state. Handed over to (chain, onError) and unable to start: the run
    lets go of the object, visibly."""
    return Ending(
        "Canceled",
        "Canceled",
        message,
        Event("ProcessCanceled", f"{run.process}: {message}", "Warning"),
        status.let_go(message) if handed_over else None,
    )


def deleted_message(run: str, transitioning: str | None, ways_out: list[str]) -> str:
    """What the object says after a user deleted the run that held it: where it is left and
    which processes may start from there (its way out)."""
    where = f"it stays {transitioning}" if transitioning else "it stays where it was"
    if ways_out:
        out = f"processes that start from {transitioning}: {', '.join(ways_out)}"
    else:
        out = "no process starts from there; set its state with kubectl patch --subresource=status"
    return f"run {run} was deleted before it ended; {where}; {out}"
