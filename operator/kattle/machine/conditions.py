"""Status conditions, as Kubernetes keeps them: the transition time moves only on change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    *,
    type: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """A new list with condition `type` set (None: Unknown); the others are kept as they are."""
    value = "Unknown" if status is None else "True" if status else "False"
    previous = next((c for c in conditions if c.get("type") == type), None)
    changed = previous is None or previous.get("status") != value
    condition: dict[str, Any] = {
        "type": type,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": (
            datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if changed or previous is None
            else previous.get("lastTransitionTime")
        ),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return [*(dict(c) for c in conditions if c.get("type") != type), condition]


def without_times(conditions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """For comparing: two lists that differ only in times say the same thing."""
    return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions]


def run_succeeded(
    conditions: Sequence[Mapping[str, Any]], phase: str, exit_reason: str | None, message: str
) -> list[dict[str, Any]]:
    """A run's `Succeeded` condition, as Tekton and Knative keep it: Unknown while it runs
    (reason: the phase), then True or False with the exit reason, so that
    `kubectl wait --for=condition=Succeeded` works on runs."""
    ended = {"Succeeded": True, "Failed": False, "Canceled": False}
    return set_condition(
        conditions,
        type="Succeeded",
        status=ended.get(phase),
        reason=(exit_reason if phase in ended else None) or phase,
        message=message,
    )
