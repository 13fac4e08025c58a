"""Whether a run may take its object now: Cattle's admission, decided on plain data.

An object is taken by at most one run at a time. The run that holds it is named in the
object's `status.activeRun`; taking it is a compare-and-set write of that field together with
the transitioning state, so two runs (or two operators) can never both win. This module only
decides; the runner gathers the facts and does the write.

Some facts cost an API read (is the holder still running? has the parent's record ended?).
`decide` asks for them one at a time, only when the answer matters: it returns
`Verdict.NEED` naming the fact, the runner reads it and asks again. So the reads a run makes
follow from the rules, not from the order the runner happens to make them in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kattle.api.processdefinition import ProcessDefinitionSpec


class Verdict(enum.Enum):
    ADMIT = "admit"  # in a start state and free (or handed over to us): take it
    RESUME = "resume"  # we already took it (the operator restarted): go on with handlers
    WAIT = "wait"  # another run goes first (`Decision.waits_for`)
    CANCEL = "cancel"  # free, but not in a start state: the run ends Canceled
    GONE = "gone"  # the object does not exist, or is another object of the same name
    # This run took the object before and lost it since (activeRun was cleared): taking it
    # again would run its process twice.
    LOST = "lost"
    # The object names the run as its last one: it ended (the operator stopped between the
    # object's final write and the run's record), and only the record is left to write.
    FINISHED = "finished"
    NEED = "need"  # a fact is missing (`Decision.need`): read it and ask again
    # Free and already in the process's done state (Cattle's ALREADY_DONE): the run
    # succeeds without taking the object or calling a handler.
    ALREADY_DONE = "already_done"
    # Held by a run that started this one (through related runs) and waits for it: waiting
    # would never end, so the run fails at once.
    CYCLE = "cycle"


class Fact(enum.Enum):
    HOLDER_RUNNING = "holder_running"  # the run in activeRun exists and has not ended
    PARENT_RUNNING = "parent_running"  # the parent run's record is not final yet
    PREVIOUS_RUNNING = "previous_running"  # the run in lastRun's record is not final yet


@dataclass(frozen=True)
class Facts:
    """What admission depends on. `status` is None when the object is gone."""

    run: str
    process: str
    spec: ProcessDefinitionSpec
    initial: str | None  # the state of the process's stateField while it is unset
    status: Mapping[str, Any] | None
    took_before: bool = False  # the run's record holds its transition into `transitioning`
    parent: str | None = None  # the run that handed the object over (chain, onError)
    ancestors: tuple[str, ...] = ()  # the runs that started this one (related runs)
    # For a replay: the failed run it replays. It may take the object only where that run
    # left it: in a transitioning state, with nothing run on it since.
    replay_of: str | None = None
    known: Mapping[Fact, bool] | None = None

    def knowing(self, fact: Fact, value: bool) -> Facts:
        return replace(self, known={**(self.known or {}), fact: value})


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    state: str | None = None
    reason: str = ""
    waits_for: str | None = None  # WAIT: the run that goes first
    need: Fact | None = None
    handed_over: bool = False  # the object's activeRun names this run already


def current_state(status: Mapping[str, Any], state_field: str, initial: str | None) -> str | None:
    """The object's state in `state_field`; while unset, the field's `initial` state (the
    ResourceDefinition's `initialState`, or its `initialStates` entry), if it has one."""
    value = status.get(state_field)
    if isinstance(value, str) and value:
        return value
    return initial


def holder_of(status: Mapping[str, Any]) -> str | None:
    return status.get("activeRun") or None


def previous_of(status: Mapping[str, Any], run: str) -> str | None:
    """The run the object's `lastRun` names, if another."""
    last = status.get("lastRun")
    name = last.get("name") if isinstance(last, Mapping) else None
    return name if isinstance(name, str) and name and name != run else None


def decide(facts: Facts) -> Decision:
    """What `facts.run` may do with its object now."""
    status = facts.status
    if status is None:
        return Decision(Verdict.GONE, reason="does not exist")
    spec = facts.spec
    state = current_state(status, spec.state_field, facts.initial)
    holder = holder_of(status)
    last = status.get("lastRun")
    if holder != facts.run and isinstance(last, Mapping) and last.get("name") == facts.run:
        return Decision(Verdict.FINISHED, state, f"ended {last.get('exitReason')}")
    held = _held(facts, status, state, holder)
    if held is not None:
        return held
    handed_over = holder == facts.run
    moved = _moved_on(facts, status, state)
    if moved and not handed_over and not facts.took_before:
        return Decision(Verdict.CANCEL, state, moved)
    starts = spec.starts()
    if state not in starts and state in spec.dones() and not handed_over and not facts.took_before:
        return Decision(Verdict.ALREADY_DONE, state, f"already {state}")
    # An object left in this process's transitioning state (its run failed, or was deleted)
    # is taken again by the next run of the process, as in Cattle: it resumes the process.
    resumes = state in spec.transitionings() and not handed_over
    if state not in starts and not resumes:
        shown = state if state is not None else f"unset status.{spec.state_field}"
        reason = f"{facts.process} starts from {', '.join(starts)}, and the object is {shown}"
        return Decision(Verdict.CANCEL, state, reason, handed_over=handed_over)
    if facts.took_before:
        return Decision(
            Verdict.LOST,
            state,
            "the object is no longer held by this run (activeRun was cleared after it took "
            "it); the process is not run twice",
        )
    previous = previous_of(status, facts.run)
    if previous is not None:
        # The run before ended on the object but not yet in its own record (the operator
        # stopped in between): it goes first, or once the object's lastRun names this run,
        # the previous one could never tell that it had ended.
        running = _known(facts, Fact.PREVIOUS_RUNNING)
        if running is None:
            return Decision(Verdict.NEED, state, need=Fact.PREVIOUS_RUNNING)
        if running:
            return Decision(Verdict.WAIT, state, f"waiting for {previous} to end", previous)
    return Decision(Verdict.ADMIT, state, f"{state} is a start state", handed_over=handed_over)


def _held(
    facts: Facts, status: Mapping[str, Any], state: str | None, holder: str | None
) -> Decision | None:
    """What the object's holder (activeRun) decides, if anything: resume, wait, refuse."""
    if holder == facts.run and facts.parent:
        # Handed the object, but the parent's record may not be final (the operator stopped
        # in between): the parent goes first, so it finishes from the object's lastRun,
        # which names it until this run ends.
        running = _known(facts, Fact.PARENT_RUNNING)
        if running is None:
            return Decision(Verdict.NEED, state, need=Fact.PARENT_RUNNING)
        if running:
            return Decision(Verdict.WAIT, state, f"waiting for {facts.parent} to end", facts.parent)
    if holder == facts.run:
        if status.get("process") == facts.process and state in facts.spec.transitionings():
            return Decision(Verdict.RESUME, state, "already transitioning", handed_over=True)
    elif holder in facts.ancestors:
        return Decision(
            Verdict.CYCLE,
            state,
            f"the object is held by {holder}, which started this run and waits for it",
            holder,
        )
    elif holder:
        running = _known(facts, Fact.HOLDER_RUNNING)
        if running is None:
            return Decision(Verdict.NEED, state, need=Fact.HOLDER_RUNNING)
        if running:
            return Decision(Verdict.WAIT, state, f"waiting for {holder} to end", holder)
    return None


def _moved_on(facts: Facts, status: Mapping[str, Any], state: str | None) -> str:
    """For a replay run whose object has moved on since the run it replays failed: why."""
    if facts.replay_of is None:
        return ""
    last = status.get("lastRun")
    ran = last.get("name") if isinstance(last, Mapping) else None
    if ran != facts.replay_of:
        return f"the object has moved on: {ran or 'another run'} ran since {facts.replay_of}"
    if state not in facts.spec.transitionings():
        return f"the object has moved on: it is {state}, not where {facts.replay_of} left it"
    return ""


def _known(facts: Facts, fact: Fact) -> bool | None:
    return (facts.known or {}).get(fact)
