"""What a run's end writes: to its object, to its record, and the Event it leaves.

One pure function per way a run ends. The runner writes what they return, in order: the
object (with `lastRun`, so a run whose operator dies before its record still ends right),
the run's Event, then its final record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from kattle.api.generated import RunSummary
from kattle.api.processdefinition import ProcessDefinition
from kattle.api.processinstance import ExitReason, ProcessInstanceStatus, RunPhase
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


def done_then_chained(
    run: Run,
    *,
    state_field: str,
    transitioning: str,
    state: str,
    handler_writes: Mapping[str, Any],
    target: str,
    child: str,
) -> Ending:
    """Done, and the object handed straight to the run of the chain the run named
    (`spec.chain`), in the one write that ends the run: no other run comes in between."""
    finished = done(
        run,
        state_field=state_field,
        transitioning=transitioning,
        state=state,
        handler_writes=handler_writes,
    )
    writes = {**(finished.writes or {}), **status.hand_over(target, child)}
    path = " -> ".join(s for s in (run.from_state, transitioning, state) if s)
    return Ending(
        "Succeeded",
        "Chained",
        f"{state}; chained {target} ({child})",
        Event("Chained", f"{run.process}: {path}, then {target} ({child})"),
        status.with_last_run(writes, summary(run, "Succeeded", "Chained", child)),
        chained_to=child,
        transitions=finished.transitions,
    )


def already_done_chained(run: Run, *, state: str, target: str, child: str) -> Ending:
    """Already in the done state, with a chain named (`spec.chain`): the chain still runs,
    as Cattle's chainProcess did (exit CHAIN). The object was never held, so the chained run
    is not handed it: it is admitted as any run is, from the done state."""
    return Ending(
        "Succeeded",
        "Chained",
        f"already {state}; chained {target} ({child})",
        Event("Chained", f"{run.process}: already {state}, then {target} ({child})"),
        chained_to=child,
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


def left_in(definition: ProcessDefinition | None, state: str | None) -> str | None:
    """The transitioning state a deleted run left its object in: the object's state when it
    is one of the process's (with a state map, the run's own), else the process's first."""
    if definition is None:
        return None
    states = definition.spec.transitionings()
    return state if state in states else next(iter(states), None)


def ways_out(
    definition: ProcessDefinition | None,
    transitioning: str | None,
    processes: Iterable[ProcessDefinition],
) -> list[str]:
    """The processes of the object's type that may start where a deleted run left it: those
    of the same state field that start from `transitioning`, and the process itself (it
    resumes from its own transitioning state)."""
    if definition is None:
        return []
    return sorted(
        p.metadata.name or ""
        for p in processes
        if p.spec.state_field == definition.spec.state_field
        and (transitioning in p.spec.starts() or p.metadata.name == definition.metadata.name)
    )


@dataclass(frozen=True)
class Resumed:
    """How a run completes its record from its object's `lastRun` (the operator stopped
    after the object's last write and before the record): what the record lacks, and the
    Event the run's end would have posted."""

    phase: RunPhase
    reason: ExitReason
    message: str
    event: Event | None
    # (from, to, at) the record lacks: the take, and for a run that reached done, that.
    transitions: tuple[tuple[str, str, datetime | None], ...]
    start_time: datetime | None
    chained_to: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Way:
    """The route the run took through its process: where the resumed Event says it went."""

    state_field: str
    transitioning: str
    done: str
    on_error: str | None = None


def resumed(
    summary: RunSummary,
    record: ProcessInstanceStatus,
    *,
    run: str,
    process: str,
    way: Way,
    holder_process: str | None,
    now: datetime,
) -> Resumed:
    """`record` completed from `summary`; `holder_process` is the process the object names
    now (a chained run's), for the Event of a run that chained."""
    reached = {t.to for t in record.transitions}
    missing: list[tuple[str, str, datetime | None]] = []
    if way.transitioning not in reached:
        missing.append((summary.from_state or "", way.transitioning, summary.start_time))
        reached.add(way.transitioning)
    if summary.exit_reason == "Done" and way.done not in reached:
        missing.append((way.transitioning, way.done, summary.end_time))
    data = summary.data if summary.data and not record.data else record.data
    start = record.start_time or summary.start_time
    reason = cast(ExitReason, summary.exit_reason or "Done")
    message = record.message
    if summary.chained_to and not message:
        message = f"{reason.lower()}: {summary.chained_to}"
    at = Run(run, process, summary.from_state, start, summary.end_time or now, data)
    return Resumed(
        "Succeeded" if summary.phase == "Succeeded" else "Failed",
        reason,
        message,
        _resumed_event(at, summary, reason, message, way, holder_process),
        tuple(missing),
        start,
        summary.chained_to or record.chained_to,
        data,
    )


def _resumed_event(
    run: Run,
    summary: RunSummary,
    reason: ExitReason,
    message: str,
    way: Way,
    holder_process: str | None,
) -> Event | None:
    child = summary.chained_to or ""
    if reason == "Done":
        return done(
            run,
            state_field=way.state_field,
            transitioning=way.transitioning,
            state=way.done,
            handler_writes={},
        ).event
    if reason == "Chained":
        return chained(run, target=holder_process or "?", child=child, handler_writes={}).event
    if reason == "OnError":
        return on_error(run, message=message, target=way.on_error or "?", child=child).event
    return exhausted(run, message=message).event
