"""Runs a process's `relatedRuns` steps: one run on each related object, waited for.

A step finds the related objects (children by ownerReference, or the names a spec field
holds), checks that none would wait for a run that started it, creates the runs that do not
exist yet (at most `maxConcurrent` unfinished at once) and waits for them, lending its run
slot meanwhile so the runs it waits for can go. The parent keeps holding its own object. A
failed step is tried again with Cattle's backoff and new runs, then fails the parent (its
onError takes over, if any). Every decision is in `machine/related.py`; this module reads,
creates and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kattle.api.processdefinition import RelatedRuns
from kattle.api.processinstance import ChildRun, ExitReason
from kattle.api.resourcedefinition import Relation
from kattle.kube.kinds import PROCESS_INSTANCES, kind_of
from kattle.machine import outcome as outcomes
from kattle.machine import related as decide
from kattle.runner.driving import Target
from kattle.runner.manifests import run_manifest
from kattle.runner.retries import retry_later
from kattle.runner.watch import Watcher

if TYPE_CHECKING:
    from kattle.runner.run import ProcessRun

# Runs are read again this often while a step waits, in case an event was missed.
RECHECK_SECONDS = 5.0


@dataclass(frozen=True)
class StepFailure:
    message: str
    reason: ExitReason = "RetriesExhausted"


@dataclass(frozen=True)
class _Step:
    """One relatedRuns entry of one run: what it runs, and the label its runs carry."""

    index: int
    spec: RelatedRuns
    relation: Relation
    key: str  # e.g. `before-0`

    @property
    def where(self) -> str:
        return f"relatedRuns[{self.index}] ({self.spec.process} on {self.relation.name})"


async def run_steps(
    run: ProcessRun, target: Target, when: str, data: dict[str, Any]
) -> StepFailure | None:
    """Runs the process's relatedRuns for `when` (before/after its handlers), in order."""
    resource = target.resource.spec
    for index, spec in target.spec.related_steps(when):
        relation = resource.relation(spec.relation)
        if relation is None:  # the catalog reports it; the run would have ended Invalid
            return StepFailure(f"{target.resource.metadata.name} has no relation {spec.relation}")
        step = _Step(index, spec, relation, f"{when}-{index}")
        failure = await _run_step(run, target, step, data)
        if failure is not None:
            return failure
    return None


async def _run_step(
    run: ProcessRun, target: Target, step: _Step, data: dict[str, Any]
) -> StepFailure | None:
    label = decide.step_id(run.uid, step.key)
    existing = await _runs_of(run, label)
    attempt = decide.latest_attempt([(pi["metadata"].get("labels") or {}) for pi in existing])
    rules = outcomes.Rules(step.spec.retry_limit, ignore_failures=False)
    while True:
        verdict = await _attempt(run, target, step, data, attempt)
        if verdict.state is decide.StepState.SUCCEEDED:
            return None
        if verdict.state is decide.StepState.CYCLE:
            return StepFailure(f"{step.where}: {verdict.message}", "Cycle")
        result = outcomes.CallResult(step.where, attempt, error=f"{step.where}: {verdict.message}")
        outcome = outcomes.decide(result, rules)
        run.engine.events.post(
            run.obj, "RelatedRunFailed", outcomes.failed_event(outcome), type="Warning"
        )
        if outcome.kind is outcomes.Kind.EXHAUSTED:
            return StepFailure(outcome.message)
        await retry_later(run, target, outcome)
        attempt += 1


async def _attempt(
    run: ProcessRun, target: Target, step: _Step, data: dict[str, Any], attempt: int
) -> decide.StepVerdict:
    """Runs one attempt of the step to its end (or to a failure that ends it early)."""
    found = await _related_objects(run, target, step.relation)
    if isinstance(found, str):
        return decide.StepVerdict(decide.StepState.FAILED, found)
    ancestry = [
        *run.ancestry,
        {"run": run.name, "process": run.process_name, "resource": run.resource_name},
    ]
    links = [decide.Link(a["run"], a["process"], a["resource"]) for a in ancestry]
    for obj in found:
        refused = decide.cycle(links, step.spec.process, obj["metadata"]["name"])
        if refused is not None:
            return decide.StepVerdict(decide.StepState.CYCLE, refused)
    wanted = {
        decide.child_name(o["metadata"]["name"], step.spec.process, run.uid, step.key, attempt): o
        for o in found
    }
    for name, obj in wanted.items():
        _note_child(run, step, attempt, name, obj["metadata"]["name"], {})
    label = decide.step_id(run.uid, step.key)
    with run.engine.watch.watching() as watcher:
        watcher.add(wanted)
        statuses = await _statuses(run, label, attempt)
        while True:
            for name in decide.to_start(list(wanted), statuses, step.spec.max_concurrent):
                body = _manifest(run, step, attempt, name, wanted[name], data, ancestry)
                await run.engine.kube.create(PROCESS_INSTANCES, body, run.namespace, exists_ok=True)
                statuses[name] = {}
            for name, status in statuses.items():
                if name in wanted:
                    _note_child(run, step, attempt, name, wanted[name]["metadata"]["name"], status)
            verdict = decide.step_verdict(statuses, list(wanted))
            if verdict.state is not decide.StepState.RUNNING:
                return verdict
            await run.write_record(
                phase="Running", message=f"{step.where}: waiting for {len(wanted)} related run(s)"
            )
            statuses = await _wait(run, watcher, label, attempt, statuses)


async def _wait(
    run: ProcessRun,
    watcher: Watcher,
    label: str,
    attempt: int,
    statuses: dict[str, Mapping[str, Any]],
) -> dict[str, Mapping[str, Any]]:
    """The step's runs' statuses after the next change, or after a fresh read."""
    async with run.engine.slots.lent():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watcher.changed.wait(), RECHECK_SECONDS)
    if watcher.changed.is_set():
        watcher.changed.clear()
        return {**statuses, **watcher.statuses}
    return {**statuses, **await _statuses(run, label, attempt)}


async def _runs_of(run: ProcessRun, label: str, attempt: int | None = None) -> list[Any]:
    selector = f"{decide.PARENT_STEP_LABEL}={label}"
    if attempt is not None:
        selector += f",{decide.ATTEMPT_LABEL}={attempt}"
    found: list[Any] = await run.engine.kube.list(
        PROCESS_INSTANCES, run.namespace, label_selector=selector
    )
    return found


async def _statuses(run: ProcessRun, label: str, attempt: int) -> dict[str, Mapping[str, Any]]:
    return {
        pi["metadata"]["name"]: pi.get("status") or {} for pi in await _runs_of(run, label, attempt)
    }


async def _related_objects(
    run: ProcessRun, target: Target, relation: Relation
) -> list[dict[str, Any]] | str:
    """The related objects, by name; a message when they cannot be found."""
    definition = run.engine.catalog.resources.get(relation.type)
    if definition is None:
        return f"relation {relation.name}: resource type {relation.type} has no ResourceDefinition"
    kind = kind_of(definition)
    if relation.kind == "children":
        listed = await run.engine.kube.list(kind, target.namespace)
        return [dict(o) for o in decide.owned_by(listed, run.obj["metadata"]["uid"])]
    names = decide.names_in(run.obj.get("spec") or {}, relation.field or "")
    if isinstance(names, str):
        return f"relation {relation.name}: {names}"
    found = []
    for name in names:
        obj = await run.engine.kube.get(kind, name, target.namespace, missing_ok=True)
        if obj is None:
            return (
                f"relation {relation.name}: {definition.spec.names.kind} {name} "
                f"(named in spec.{relation.field}) does not exist"
            )
        found.append(obj)
    return found


def _manifest(
    run: ProcessRun,
    step: _Step,
    attempt: int,
    name: str,
    obj: Mapping[str, Any],
    data: dict[str, Any],
    ancestry: list[dict[str, str]],
) -> dict[str, Any]:
    return run_manifest(
        name=name,
        namespace=run.namespace,
        process=step.spec.process,
        obj=obj,
        trigger="related",
        data=data,
        parent=run.name,
        labels={
            decide.PARENT_STEP_LABEL: decide.step_id(run.uid, step.key),
            decide.ATTEMPT_LABEL: str(attempt),
        },
        ancestry=ancestry,
    )


def _note_child(
    run: ProcessRun, step: _Step, attempt: int, name: str, obj: str, status: Mapping[str, Any]
) -> None:
    """The child as the parent's record lists it, updated in place."""
    entry = ChildRun.model_validate(
        {
            "name": name,
            "process": step.spec.process,
            "resource": obj,
            "relation": step.relation.name,
            "attempt": attempt,
            "phase": status.get("phase"),
            "exitReason": status.get("exitReason"),
            "startTime": status.get("startTime"),
            "endTime": status.get("endTime"),
        }
    )
    children = run.record.children
    for i, child in enumerate(children):
        if child.name == name:
            children[i] = entry
            return
    children.append(entry)
