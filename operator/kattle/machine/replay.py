"""Replay (Cattle's processinstance.replay): a failed run started again from the step where
it stopped, decided on plain data.

A user asks by setting the annotation `kattle.dev/replay` on the failed ProcessInstance (any
new value asks again; `kattle retry RUN` sets it to the time). The operator answers each
value once, in the run's `status.replay`: the replay run it started (a new ProcessInstance,
trigger `replay`, `parent` the failed run), or why it refused. The replay skips the handler
steps that succeeded in the failed run, starts from its data and writes, when it ends, the
status the skipped steps asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from kattle.api.processdefinition import ProcessDefinitionSpec
from kattle.api.processinstance import HandlerCall
from kattle.machine.admission import current_state, holder_of
from kattle.machine.names import idempotency_key

REPLAY_ANNOTATION = "kattle.dev/replay"
# Ended in a way a replay can pick up from: the object was left in the transitioning state.
REPLAYABLE = frozenset({"RetriesExhausted", "TimedOut", "PermanentError"})


def wanted(pi: Mapping[str, Any]) -> str | None:
    """The annotation's value, when the operator has not answered it yet."""
    meta = pi.get("metadata") or {}
    asked = (meta.get("annotations") or {}).get(REPLAY_ANNOTATION)
    answered = ((pi.get("status") or {}).get("replay") or {}).get("requested")
    return asked if asked and asked != answered else None


def replay_name(run: str, requested: str) -> str:
    """The replay run's name: the same for the same request, so an operator that restarts
    while answering it does not start a second run."""
    digest = hashlib.sha256(f"{run}/{requested}".encode()).hexdigest()[:6]
    # 253 characters at most, and no `..` or `-.` where a long name is cut.
    return f"{run[:239].rstrip('.-')}.replay-{digest}"


def refusal(
    pi: Mapping[str, Any],
    obj: Mapping[str, Any] | None,
    spec: ProcessDefinitionSpec | None,
    initial: str | None,
) -> str | None:
    """Why the run cannot be replayed now; None when it can. `obj` is its object (None when
    gone), `spec` its process's definition (None when deleted)."""
    name = pi["metadata"]["name"]
    status = pi.get("status") or {}
    phase, reason = status.get("phase"), status.get("exitReason")
    if phase != "Failed" or reason not in REPLAYABLE:
        shown = f"{phase} ({reason})" if reason else str(phase)
        return (
            f"{name} ended {shown}: only a run that failed with its object left transitioning "
            f"({', '.join(sorted(REPLAYABLE))}) can be replayed"
        )
    if spec is None:
        return f"{name}'s process {pi['spec']['process']} has no ProcessDefinition any more"
    uid = pi["spec"]["resource"].get("uid")
    if obj is None or uid not in (None, (obj.get("metadata") or {}).get("uid")):
        return f"{name}'s object {pi['spec']['resource']['name']} is gone"
    return _moved_on(name, obj.get("status") or {}, spec, initial)


def _moved_on(
    name: str, status: Mapping[str, Any], spec: ProcessDefinitionSpec, initial: str | None
) -> str | None:
    holder = holder_of(status)
    if holder:
        return f"the object has moved on: {holder} holds it"
    last = status.get("lastRun") or {}
    if last.get("name") != name:
        return (
            f"the object has moved on: {last.get('process', '?')} ({last.get('name', '?')}) "
            "ran on it since"
        )
    state = current_state(status, spec.state_field, initial)
    if state not in spec.transitionings():
        return f"the object has moved on: it is {state}, not where {name} left it"
    return None


def done_steps(
    steps: Iterable[tuple[int, str]], parent_uid: str, calls: Iterable[HandlerCall]
) -> set[int]:
    """Which of the plan's steps, by (index, handler), succeeded in the failed run `parent_uid`:
    a step is the same step when its idempotency key is (same place in the plan, same
    handler). A plan changed since calls the moved steps again, which handlers must allow."""
    succeeded = {c.idempotency_key for c in calls if c.outcome == "Succeeded"}
    return {
        index
        for index, handler in steps
        if idempotency_key(parent_uid, index, handler) in succeeded
    }
