"""Runs on related objects, decided on plain data: which objects, which runs, what a step's
runs come to, and whether a run would wait for one of the runs that started it.

A step of a process (one `relatedRuns` entry, or a handler's request) runs one process on
each related object and waits for them all. Its runs are named from the parent run's uid,
the step and the attempt, so a parent that is killed and resumes finds the runs it started
instead of starting them twice; a retried step gets new runs (attempt + 1), and those on
objects already in their done state end `AlreadyDone` at once.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kattle.api.processinstance import FINAL_PHASES
from kattle.machine.names import run_name

PARENT_STEP_LABEL = "kattle.dev/parent-step"
ATTEMPT_LABEL = "kattle.dev/attempt"


def names_in(spec: Mapping[str, Any], path: str) -> list[str] | str:
    """The object names at `spec.<path>` (one name or a list of names); a message when the
    field holds something else. An unset field names nothing."""
    value: Any = spec
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return list(dict.fromkeys(value))
    return f"spec.{path} must be a name or a list of names, not {type(value).__name__}"


def owned_by(objects: Sequence[Mapping[str, Any]], owner_uid: str) -> list[Mapping[str, Any]]:
    """The objects whose ownerReferences name `owner_uid`, by name."""
    found = [
        o
        for o in objects
        if any(r.get("uid") == owner_uid for r in o["metadata"].get("ownerReferences") or [])
    ]
    return sorted(found, key=lambda o: str(o["metadata"]["name"]))


def step_id(parent_uid: str, step: str) -> str:
    """The label value that finds a step's runs: at most 63 characters."""
    return f"{parent_uid}.{step}"[:63]


def child_name(obj: str, process: str, parent_uid: str, step: str, attempt: int) -> str:
    return run_name(obj, process, f"{parent_uid}/{step}/{attempt}")


@dataclass(frozen=True)
class Link:
    """One run in a chain of runs that started each other."""

    run: str
    process: str
    resource: str

    @property
    def type(self) -> str:
        return self.process.partition(".")[0]


def cycle(ancestry: Sequence[Link], process: str, obj: str) -> str | None:
    """A message naming the chain when a run of `process` on `obj` would wait for a run that
    started it (the object is one an ancestor runs on, and so holds); None otherwise."""
    kind = process.partition(".")[0]
    for index, link in enumerate(ancestry):
        if (link.type, link.resource) == (kind, obj):
            chain = " -> ".join(f"{a.process} on {a.resource} ({a.run})" for a in ancestry[index:])
            return (
                f"{chain} -> {process} on {obj}: {obj} is held by {link.run}, which waits "
                "for this run; refused rather than deadlocked"
            )
    return None


class StepState(enum.Enum):
    RUNNING = "running"  # some runs have not ended
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # some run failed or was canceled: the step is retried or fails
    CYCLE = "cycle"  # some run was refused as a cycle: retrying cannot help


@dataclass(frozen=True)
class StepVerdict:
    state: StepState
    message: str = ""


def step_verdict(runs: Mapping[str, Mapping[str, Any]], wanted: Sequence[str]) -> StepVerdict:
    """What the runs of one attempt of a step come to. `runs` maps run names to their
    status (`phase`, `exitReason`, `message`); `wanted` names every run of the attempt."""
    failed = []
    for name in wanted:
        status = runs.get(name) or {}
        phase = status.get("phase")
        if phase not in FINAL_PHASES:
            return StepVerdict(StepState.RUNNING, f"waiting for {name}")
        if phase != "Succeeded":
            why = status.get("message") or status.get("exitReason") or phase
            failed.append((name, str(status.get("exitReason")), f"{name} ended {phase}: {why}"))
    if not failed:
        return StepVerdict(StepState.SUCCEEDED)
    message = "; ".join(text for _, _, text in failed)
    if any(reason == "Cycle" for _, reason, _ in failed):
        return StepVerdict(StepState.CYCLE, message)
    return StepVerdict(StepState.FAILED, message)


def to_start(
    wanted: Sequence[str], runs: Mapping[str, Mapping[str, Any]], max_concurrent: int
) -> list[str]:
    """The runs to create now, in order: as many as keep at most `max_concurrent` of the
    step's runs unfinished. Runs that exist already are not created again."""
    unfinished = sum(
        1 for n in wanted if n in runs and (runs[n] or {}).get("phase") not in FINAL_PHASES
    )
    room = max(0, max_concurrent - unfinished)
    return [n for n in wanted if n not in runs][:room]


def latest_attempt(labels: Sequence[Mapping[str, str]]) -> int:
    """The highest attempt among a step's runs (by their labels); 1 when there are none."""
    attempts = [int(v) for v in (lbl.get(ATTEMPT_LABEL) for lbl in labels) if v and v.isdigit()]
    return max(attempts, default=1)
