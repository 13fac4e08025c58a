"""The one rule for an object being deleted: may it go now, which delete process runs next,
or why it is held. Used by the object controller (on every event of a deleted object) and
by the runner (when a delete run ends), so both let go of an object for the same reasons.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kattle.api.processdefinition import ProcessDefinition
from kattle.machine.admission import current_state


class Step(enum.Enum):
    GO = "go"  # release the finalizer
    START = "start"  # run `Deletion.process`
    WAIT = "wait"  # a run holds the object; its end brings the next event
    HOLD = "hold"  # no delete process starts from here: say why (`Deletion.message`)


@dataclass(frozen=True)
class Deletion:
    step: Step
    process: str | None = None
    message: str = ""


def decide(
    status: Mapping[str, Any],
    deleting: Sequence[ProcessDefinition],
    next_process: ProcessDefinition | None,
    initial: Callable[[str], str | None],
) -> Deletion:
    """`deleting`: the type's delete processes; `next_process`: the one that starts from the
    object's state, if any; `initial(field)`: a state field's initial state."""
    if not deleting:
        return Deletion(Step.GO)
    if status.get("activeRun"):
        return Deletion(Step.WAIT)
    last = status.get("lastRun") or {}
    ran = last.get("process") if last.get("phase") == "Succeeded" else None
    if next_process is not None and ran != next_process.metadata.name:
        return Deletion(Step.START, next_process.metadata.name)
    if ran in {p.metadata.name for p in deleting}:
        return Deletion(Step.GO)
    fields = sorted({"state", *(p.spec.state_field for p in deleting)})
    now_in = ", ".join(_field_state(status, field, initial(field)) for field in fields)
    starts = "; ".join(
        f"{p.metadata.name} starts from {', '.join(p.spec.starts())}"
        + ("" if p.spec.state_field == "state" else f" of {p.spec.state_field}")
        for p in deleting
    )
    return Deletion(
        Step.HOLD,
        message=(
            f"deletion waits: no delete process starts from {now_in} ({starts}); "
            "run a process that moves the object to one of those states"
        ),
    )


def _field_state(status: Mapping[str, Any], field: str, initial: str | None) -> str:
    """`state 'running'`, or `unset healthState` for a field with no state yet."""
    value = current_state(status, field, initial)
    return f"{field} {value!r}" if value is not None else f"unset {field}"
