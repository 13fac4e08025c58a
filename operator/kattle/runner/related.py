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
from kattle.api.webhook import RunRequest
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
# How many runs a handler's request starts at once.
REQUESTED_MAX_CONCURRENT = 10


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
    label = decide.step_id(run.seed, step.key)
    existing = await _runs_of(run, label)
    attempt = decide.latest_attempt([(pi["metadata"].get("labels") or {}) for pi in existing])
    # The one read of the step's runs: the latest attempt's are known from it, and a later
    # attempt's cannot exist yet. (A run of it ending before the watch is set up is seen at
    # the next recheck.)
    known = {
        pi["metadata"]["name"]: pi.get("status") or {}
        for pi in existing
        if (pi["metadata"].get("labels") or {}).get(decide.ATTEMPT_LABEL) == str(attempt)
    }
    rules = outcomes.Rules(step.spec.retry_limit, ignore_failures=False)
    while True:
        verdict = await _attempt(run, target, step, data, attempt, known)
        known = {}
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


@dataclass(frozen=True)
class _Wanted:
    """One run a step wants: its name, its process, and the object it runs on."""

    name: str
    process: str
    obj: Mapping[str, Any]
    relation: str
    data: Mapping[str, Any]

    @property
    def resource(self) -> str:
        return str(self.obj["metadata"]["name"])


@dataclass(frozen=True)
class _Batch:
    """One attempt of one step: the label its runs carry, and how many may go at once."""

    key: str  # e.g. `before-0`, `call-2`
    attempt: int
    max_concurrent: int

    def label(self, run: ProcessRun) -> str:
        return decide.step_id(run.seed, self.key)


def ancestry_of(run: ProcessRun) -> list[dict[str, str]]:
    """The chain of runs a run started by `run` belongs to: `run`'s own, then `run`."""
    me = {"run": run.name, "process": run.process_name, "resource": run.resource_name}
    return [*run.ancestry, me]


def refused(run: ProcessRun, wanted: list[_Wanted]) -> str | None:
    """The first wanted run that would wait for one of its ancestors, as a message."""
    links = [decide.Link(a["run"], a["process"], a["resource"]) for a in ancestry_of(run)]
    for child in wanted:
        message = decide.cycle(links, child.process, child.resource)
        if message is not None:
            return message
    return None


async def _attempt(
    run: ProcessRun,
    target: Target,
    step: _Step,
    data: dict[str, Any],
    attempt: int,
    known: Mapping[str, Mapping[str, Any]],
) -> decide.StepVerdict:
    """Runs one attempt of the step to its end (or to a failure that ends it early)."""
    found = await _related_objects(run, target, step.relation)
    if isinstance(found, str):
        return decide.StepVerdict(decide.StepState.FAILED, found)
    wanted = [
        _Wanted(
            decide.child_name(
                o["metadata"]["name"], step.spec.process, run.seed, step.key, attempt
            ),
            step.spec.process,
            o,
            step.relation.name,
            data,
        )
        for o in found
    ]
    cycle = refused(run, wanted)
    if cycle is not None:
        return decide.StepVerdict(decide.StepState.CYCLE, cycle)
    batch = _Batch(step.key, attempt, step.spec.max_concurrent)
    statuses = await run_batch(run, batch, wanted, step.where, known)
    return decide.step_verdict(statuses, [w.name for w in wanted])


async def run_batch(
    run: ProcessRun,
    batch: _Batch,
    wanted: list[_Wanted],
    where: str,
    known: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Mapping[str, Any]]:
    """Creates the wanted runs (at most `max_concurrent` unfinished at once) and waits for
    them all; their final statuses. The parent's record lists them as they go. `known`:
    the batch's runs as the caller read them; None reads them."""
    by_name = {w.name: w for w in wanted}
    order = list(by_name)
    for child in wanted:
        _note_child(run, child, batch.attempt, {})
    announced = False
    with run.engine.watch.watching() as watcher:
        watcher.add(order)
        statuses = (
            dict(known)
            if known is not None
            else await _statuses(run, batch.label(run), batch.attempt)
        )
        while True:
            for name in decide.to_start(order, statuses, batch.max_concurrent):
                body = _manifest(run, batch, by_name[name])
                await run.engine.kube.create(PROCESS_INSTANCES, body, run.namespace, exists_ok=True)
                statuses[name] = {}
            for name, status in statuses.items():
                if name in by_name:
                    _note_child(run, by_name[name], batch.attempt, status)
            if decide.step_verdict(statuses, order).state is not decide.StepState.RUNNING:
                return statuses
            if not announced:  # once: the children's progress is in their own records
                await run.write_record(
                    phase="Running", message=f"{where}: waiting for {len(order)} related run(s)"
                )
                announced = True
            statuses = await _wait(run, watcher, batch.label(run), batch.attempt, statuses)


async def _wait(
    run: ProcessRun,
    watcher: Watcher,
    label: str,
    attempt: int,
    statuses: dict[str, Mapping[str, Any]],
) -> dict[str, Mapping[str, Any]]:
    """The step's runs' statuses after the next change, or after a fresh read."""
    async with run.engine.slots.lent(run.priority):
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


async def run_requested(
    run: ProcessRun,
    target: Target,
    step: int,
    handler: str,
    requests: list[RunRequest],
) -> tuple[dict[str, Any], str | None]:
    """Runs what a handler's reply asked for and waits for it: the outcomes, by run name,
    for the process data, and why the step failed (None when every run succeeded). The
    runs are named from this run, the step, the process and the object, not the attempt:
    asking again (a call repeated after a crash, a retry, a `retryAfterSeconds` poll) finds
    the runs asked for before, ended or not, and starts none twice."""
    wanted: list[_Wanted] = []
    for request in requests:
        found = await _requested_object(run, target, request)
        if isinstance(found, str):
            return (
                {},
                f"handler {handler} asked for {request.process} on {request.resource}: {found}",
            )
        relation, obj = found
        name = decide.child_name(request.resource, request.process, run.seed, f"call-{step}", 1)
        wanted.append(_Wanted(name, request.process, obj, relation, request.data))
    cycle = refused(run, wanted)
    if cycle is not None:
        return {}, f"handler {handler} asked for a run that would never end: {cycle}"
    batch = _Batch(f"call-{step}", 1, REQUESTED_MAX_CONCURRENT)
    statuses = await run_batch(run, batch, wanted, f"handler {handler}")
    outcomes = {w.name: _outcome(w, statuses.get(w.name) or {}) for w in wanted}
    verdict = decide.step_verdict(statuses, [w.name for w in wanted])
    failed = verdict.state is not decide.StepState.SUCCEEDED
    return outcomes, f"handler {handler}'s runs: {verdict.message}" if failed else None


def _outcome(child: _Wanted, status: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "process": child.process,
        "resource": child.resource,
        "phase": status.get("phase"),
        "exitReason": status.get("exitReason"),
        "message": status.get("message") or "",
        "data": status.get("data") or {},
    }


async def _requested_object(
    run: ProcessRun, target: Target, request: RunRequest
) -> tuple[str, dict[str, Any]] | str:
    """The relation a requested run goes through, and its object; or why it cannot run."""
    kind_name = request.process.partition(".")[0]
    relation = next((r for r in target.resource.spec.relations if r.type == kind_name), None)
    if relation is None:
        return f"{run.type_name} has no relation to {kind_name}"
    definition = run.engine.catalog.resources.get(kind_name)
    if definition is None or request.process not in run.engine.catalog.processes:
        return f"{request.process} has no ProcessDefinition of a defined type"
    obj = await run.engine.kube.get(
        kind_of(definition), request.resource, target.namespace, missing_ok=True
    )
    if obj is None:
        return f"{definition.spec.names.kind} {request.resource} does not exist"
    return relation.name, obj


def _manifest(run: ProcessRun, batch: _Batch, child: _Wanted) -> dict[str, Any]:
    return run_manifest(
        name=child.name,
        namespace=run.namespace,
        process=child.process,
        obj=child.obj,
        trigger="related",
        data=child.data,
        parent=run.name,
        labels={
            decide.PARENT_STEP_LABEL: batch.label(run),
            decide.ATTEMPT_LABEL: str(batch.attempt),
        },
        ancestry=ancestry_of(run),
    )


def _note_child(run: ProcessRun, child: _Wanted, attempt: int, status: Mapping[str, Any]) -> None:
    """The child as the parent's record lists it, updated in place."""
    entry = ChildRun.model_validate(
        {
            "name": child.name,
            "process": child.process,
            "resource": child.resource,
            "relation": child.relation,
            "attempt": attempt,
            "phase": status.get("phase"),
            "exitReason": status.get("exitReason"),
            "startTime": status.get("startTime"),
            "endTime": status.get("endTime"),
        }
    )
    children = run.record.children
    for i, known in enumerate(children):
        if known.name == child.name:
            children[i] = entry
            return
    children.append(entry)
