"""The conditions tools read on an orchestrated object, from its Cattle state.

kstatus (and Flux and Argo CD, which build on it) reads `Reconciling` and `Stalled`, both of
"abnormal-true" polarity (present while True, removed otherwise), and `status.
observedGeneration` against `metadata.generation`; many tools also read `Ready`. A Kattle
object maps onto them without a write of its own: they ride on the writes that move its
state.

- `transitioning: yes` (a process runs): Ready False and Reconciling True, both
  `Transitioning`; kstatus says InProgress.
- `transitioning: error` (its handlers failed): Ready False and Stalled True, both
  `TransitioningError`, with the message; kstatus says Failed.
- `transitioning: no` (in a state, no process): Ready True, `InState`; kstatus says Current.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kattle.machine.conditions import set_condition

ABNORMAL = ("Reconciling", "Stalled")


def health(
    conditions: Sequence[Mapping[str, Any]],
    *,
    transitioning: str,
    state: str | None,
    process: str | None,
    message: str | None,
    generation: int | None,
) -> dict[str, Any]:
    """The `conditions` and `observedGeneration` status fields for the object as it will be."""
    if transitioning == "yes":
        why = f"{process} is running" + (f" ({state})" if state else "")
        raised: tuple[str, str, str] | None = ("Reconciling", "Transitioning", why)
        ready = (False, "Transitioning", why)
    elif transitioning == "error":
        why = message or f"{process} failed"
        raised = ("Stalled", "TransitioningError", why)
        ready = (False, "TransitioningError", why)
    else:
        raised = None
        ready = (True, "InState", f"in state {state}" if state else "no state yet")
    kept: list[dict[str, Any]] = [dict(c) for c in conditions if c.get("type") not in ABNORMAL]
    if raised is not None:
        previous = [c for c in conditions if c.get("type") == raised[0]]
        kept = set_condition(
            [*kept, *previous], type=raised[0], status=True, reason=raised[1], message=raised[2]
        )
    status, reason, text = ready
    fields: dict[str, Any] = {
        "conditions": set_condition(kept, type="Ready", status=status, reason=reason, message=text)
    }
    if generation is not None:
        fields["observedGeneration"] = generation
    return fields


def with_health(
    writes: Mapping[str, Any], current: Mapping[str, Any], state_field: str
) -> dict[str, Any]:
    """`writes` plus the conditions they imply, when they move `transitioning`; `current`
    is the object as last read (its status and generation)."""
    if "transitioning" not in writes:
        return dict(writes)
    status = {**(current.get("status") or {}), **writes}
    return {
        **writes,
        **health(
            (current.get("status") or {}).get("conditions") or [],
            transitioning=str(writes["transitioning"]),
            state=status.get(state_field),
            process=status.get("process") or (current.get("status") or {}).get("process"),
            message=status.get("transitioningMessage"),
            generation=(current.get("metadata") or {}).get("generation"),
        ),
    }


def spec_acknowledgement(
    status: Mapping[str, Any], generation: int | None
) -> dict[str, Any] | None:
    """The write that says a spec change was seen, for an object no process holds: nothing
    runs on a spec change by itself, so the object is current as soon as the change is seen.
    None when there is nothing to say (no generation yet seen, or the same one)."""
    seen = status.get("observedGeneration")
    if status.get("activeRun") or seen is None or generation is None or seen == generation:
        return None
    return {"observedGeneration": generation}
