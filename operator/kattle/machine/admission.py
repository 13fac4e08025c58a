"""Whether a run may take its object now: Cattle's admission, decided on plain data.

An object is taken by at most one run at a time. The run that holds it is named in the
object's `status.activeRun`; taking it is a compare-and-set write of that field together with
the transitioning state, so two runs (or two operators) can never both win. This module only
decides; the runner does the write.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kattle.api.processdefinition import ProcessDefinitionSpec


class Verdict(enum.Enum):
    ADMIT = "admit"  # in a start state and free (or handed over to us): take it
    RESUME = "resume"  # we already took it (the operator restarted): go on with handlers
    WAIT = "wait"  # another live run holds the object
    CANCEL = "cancel"  # free, but not in a start state: the run ends Canceled
    # The object names the run as its last one: it ended (the operator stopped between the
    # object's final write and the run's record), and only the record is left to write.
    FINISHED = "finished"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    state: str | None
    reason: str


def current_state(status: Mapping[str, Any], state_field: str, initial: str | None) -> str | None:
    """The object's state in `state_field`; while unset, the field's `initial` state (the
    ResourceDefinition's `initialState`, or its `initialStates` entry), if it has one."""
    value = status.get(state_field)
    if isinstance(value, str) and value:
        return value
    return initial


def decide(
    *,
    status: Mapping[str, Any],
    run: str,
    process: str,
    spec: ProcessDefinitionSpec,
    initial: str | None,
    holder_alive: bool,
) -> Decision:
    """What `run` of `process` may do with an object whose status is `status`; `initial`
    is the state of the process's `stateField` while unset.

    `holder_alive` says whether the run named in `status.activeRun` (if another) still
    exists and has not ended; a dead holder's claim is stale and does not block.
    """
    state = current_state(status, spec.state_field, initial)
    holder = status.get("activeRun") or None
    last = status.get("lastRun")
    if holder != run and isinstance(last, Mapping) and last.get("name") == run:
        return Decision(Verdict.FINISHED, state, f"ended {last.get('exitReason')}")
    if holder == run:
        if status.get("process") == process and state == spec.transitioning:
            return Decision(Verdict.RESUME, state, "already transitioning")
    elif holder and holder_alive:
        return Decision(Verdict.WAIT, state, f"waiting for {holder} to end")
    if state in spec.start:
        return Decision(Verdict.ADMIT, state, f"{state} is a start state")
    shown = state if state is not None else f"unset status.{spec.state_field}"
    return Decision(
        Verdict.CANCEL,
        state,
        f"{process} starts from {', '.join(spec.start)}, and the object is {shown}",
    )
