"""Replays: answering a failed run's `kattle.dev/replay` annotation, and where a replay run
starts from. The rules are `machine/replay.py`'s; this module reads and writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kattle.api.processinstance import HandlerCall, ProcessInstanceStatus, Replay
from kattle.kube.kinds import PROCESS_INSTANCES, kind_of
from kattle.machine import replay
from kattle.machine.catalog import Step
from kattle.machine.merge import merge
from kattle.machine.names import idempotency_key
from kattle.runner.driving import now
from kattle.runner.engine import Engine
from kattle.runner.manifests import RUN_SEED_ANNOTATION, run_manifest

if TYPE_CHECKING:
    from kattle.runner.run import ProcessRun

logger = logging.getLogger(__name__)


async def answer(engine: Engine, pi: dict[str, Any]) -> None:
    """Starts the replay the run's annotation asks for, or says on the run why not."""
    requested = replay.wanted(pi)
    if requested is None:
        return
    name, namespace = pi["metadata"]["name"], pi["metadata"]["namespace"]
    process = pi["spec"]["process"]
    definition = engine.catalog.processes.get(process)
    resource = engine.catalog.resources.get(process.partition(".")[0])
    obj = None
    if definition is not None and resource is not None:
        kind = kind_of(resource)
        where = namespace if kind.namespaced else None
        obj = await engine.kube.get(kind, pi["spec"]["resource"]["name"], where, missing_ok=True)
    spec = definition.spec if definition is not None else None
    initial = resource.spec.initial(spec.state_field) if resource and spec else None
    refused = replay.refusal(pi, obj, spec, initial)
    answered = Replay(requested=requested, time=now())
    if refused is None:
        child = replay.replay_name(name, requested)
        manifest = run_manifest(
            name=child,
            namespace=namespace,
            process=process,
            obj=obj or {},
            trigger="replay",
            data=pi["spec"].get("data") or {},
            parent=name,
        )
        await engine.kube.create(PROCESS_INSTANCES, manifest, namespace, exists_ok=True)
        answered.run = child
        logger.info("%s/%s replayed as %s", namespace, name, child)
    else:
        answered.refused = refused
        engine.events.post(pi, "ReplayRefused", refused, type="Warning", action="Replay")
    await engine.kube.patch(
        PROCESS_INSTANCES,
        name,
        # Nulls too: a merge patch keeps the answer to an earlier request otherwise.
        {"status": {"replay": {"run": None, "refused": None, **answered.to_wire()}}},
        namespace=namespace,
        missing_ok=True,
    )


@dataclass
class StartingPoint:
    """Where a replay run picks up: the failed run's data and status writes, and the
    steps of its own plan it skips (they succeeded in the failed run)."""

    data: dict[str, Any] = field(default_factory=dict)
    writes: dict[str, Any] = field(default_factory=dict)
    skipped: set[int] = field(default_factory=set)


async def starting_point(run: ProcessRun, plan: list[Step]) -> StartingPoint:
    """For a replay run: what the failed run got done. Nothing for other runs, or when the
    failed run's record is gone (the replay then calls every step)."""
    if run.trigger != "replay" or not run.parent:
        return StartingPoint()
    parent = await run.engine.kube.get(
        PROCESS_INSTANCES, run.parent, run.namespace, missing_ok=True
    )
    if parent is None:
        return StartingPoint()
    record = ProcessInstanceStatus.model_validate(parent.get("status") or {})
    meta = parent["metadata"]
    parent_uid = (meta.get("annotations") or {}).get(RUN_SEED_ANNOTATION) or meta["uid"]
    skipped = replay.done_steps(
        [(s.index, s.handler) for s in plan], parent_uid, record.handler_calls
    )
    for step in plan:
        if step.index in skipped and not _logged(run, step):
            run.add_call(_skipped(run, step))
    return StartingPoint(merge(record.data, run.data()), record.status_writes, skipped)


def _logged(run: ProcessRun, step: Step) -> bool:
    return any(
        c.outcome == "Skipped" and c.handler == step.handler for c in run.record.handler_calls
    )


def _skipped(run: ProcessRun, step: Step) -> HandlerCall:
    at = now()
    return HandlerCall.model_validate(
        {
            "handler": step.handler,
            "phase": step.phase,
            "attempt": 1,
            "idempotencyKey": idempotency_key(run.seed, step.index, step.handler),
            "start": at,
            "stop": at,
            "outcome": "Skipped",
            "message": f"succeeded in {run.parent}, which this run replays",
        }
    )
