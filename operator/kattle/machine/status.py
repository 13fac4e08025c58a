"""Every status write a run makes to its object, built in one place and keyed by the
field names of the model (`kattle.api.generated.ResourceStatus`), so a renamed field is a
type error here rather than a silent miss in a hand-spelled patch somewhere else.

Builders return plain `{wire name: value}` maps; `held_patch` turns one into the JSON patch
that lands only while the run still holds the object. None clears a field (the API server
prunes null from fields that are not nullable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kattle.api.generated import ResourceStatus
from kattle.machine.merge import merge

WIRE: dict[str, str] = {
    name: info.alias or name for name, info in ResourceStatus.model_fields.items()
}


def fields(**values: Any) -> dict[str, Any]:
    """`fields(active_run=None)` is `{"activeRun": None}`; unknown names are refused."""
    return {WIRE[name]: value for name, value in values.items()}


def initial(*, state: str, further: Mapping[str, str]) -> dict[str, Any]:
    """A new object whose type has no create process: `state` and each further state field
    (`initialStates`) at its initial state, and free."""
    return {**further, **fields(state=state, transitioning="no")}


def take(
    *, run: str, process: str, state_field: str, transitioning: str, from_state: str
) -> dict[str, Any]:
    """Admission and the transition in one write (made a compare-and-set by the caller)."""
    return {
        state_field: transitioning,
        **fields(
            transitioning="yes",
            transitioning_message=None,
            process=process,
            active_run=run,
            previous_state=from_state,
        ),
    }


def failing(message: str) -> dict[str, Any]:
    """A handler failed: the object shows it while the run retries or after it gave up."""
    return fields(transitioning="error", transitioning_message=message)


def progressing(percent: int | None, message: str | None) -> dict[str, Any]:
    """A long step reported how far it has come (a reply with `progress`)."""
    return fields(
        transitioning="yes", transitioning_progress=percent, transitioning_message=message
    )


def let_go(message: str) -> dict[str, Any]:
    """The run lets go of the object without reaching done: it stays in its state, with
    the reason, free for another process."""
    return {**failing(message), **fields(process=None, active_run=None)}


def delegated(*, process: str, state_field: str, transitioning: str) -> dict[str, Any]:
    """The run goes on in another process (delegate): its transitioning state, its name."""
    return {
        state_field: transitioning,
        **fields(transitioning="yes", transitioning_message=None, process=process),
    }


def hand_over(process: str, child: str) -> dict[str, Any]:
    """The object goes straight to another run (chain, onError), never free in between."""
    return fields(process=process, active_run=child)


def done(*, state_field: str, state: str) -> dict[str, Any]:
    return {
        state_field: state,
        **fields(
            transitioning="no",
            transitioning_message=None,
            process=None,
            active_run=None,
            previous_state=None,
        ),
    }


def without_stale_progress(writes: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """`writes`, clearing a progress report the object shows when they change its message
    (an error, or the end of the step that reported it). Only then: most objects never
    carry one, and a write is not made longer for them."""
    progress = WIRE["transitioning_progress"]
    message = WIRE["transitioning_message"]
    if current.get(progress) is None or progress in writes or message not in writes:
        return dict(writes)
    return {**writes, progress: None}


def with_last_run(writes: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    return {**writes, **fields(last_run=dict(summary))}


def handler_writes(current: Mapping[str, Any], writes: Mapping[str, Any]) -> dict[str, Any]:
    """What handlers asked to write, merged into the object's own maps (JSON patch `add`
    would replace a map whole)."""
    out = {}
    for key, value in writes.items():
        if isinstance(value, Mapping) and isinstance(current.get(key), Mapping):
            value = merge(current[key], value)
        out[key] = value
    return out


def held_patch(run: str, writes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A JSON patch of `writes` that the API server applies only while `activeRun` is `run`."""
    test = {"op": "test", "path": f"/status/{WIRE['active_run']}", "value": run}
    return [
        test,
        *({"op": "add", "path": f"/status/{_escape(k)}", "value": v} for k, v in writes.items()),
    ]


def is_noop(current: Mapping[str, Any], writes: Mapping[str, Any]) -> bool:
    return all(current.get(key) == value for key, value in writes.items())


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
