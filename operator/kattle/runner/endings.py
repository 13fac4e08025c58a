"""How a run ends: the writes `machine/ending.py` decides, made in a fixed order.

The object first (its last write names the run in `lastRun`), then the run's Event, then
the run's final record. The Event is posted, not queued, before the record is final and
has a name of its own: a run whose operator was killed after its object's last write posts
it again on resume, where the API server keeps the first, so a run's Event is never lost to
a kill and never posted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kattle.api.generated import RunSummary
from kattle.api.processinstance import ExitReason, RunPhase
from kattle.kube import finalizers
from kattle.kube.client import ApiError, Kind
from kattle.kube.kinds import PROCESS_INSTANCES, kind_of
from kattle.machine import deletion, ending
from kattle.machine import status as writes_of
from kattle.machine.admission import Decision
from kattle.machine.health import with_health
from kattle.machine.names import run_name
from kattle.runner.driving import Outcome, Result, Target, now
from kattle.runner.engine import Engine
from kattle.runner.manifests import run_manifest

if TYPE_CHECKING:
    from kattle.runner.run import ProcessRun

logger = logging.getLogger(__name__)


def _run(run: ProcessRun, end: datetime) -> ending.Run:
    return ending.Run(
        run.name, run.process_name, run.from_state, run.record.start_time, end, run.record.data
    )


async def done(run: ProcessRun, target: Target, handler_writes: Mapping[str, Any]) -> Result:
    spec = target.spec
    transitioning = (run.obj.get("status") or {}).get(spec.state_field, "")
    decided = ending.done(
        _run(run, now()),
        state_field=spec.state_field,
        transitioning=transitioning,
        state=target.done,
        handler_writes=run.handler_writes(handler_writes),
    )
    result = await _finish(run, target, decided)
    if run.trigger == "delete":
        await _let_go_if_deleted(run, target)
    return result


async def straight_through(run: ProcessRun, target: Target, from_state: str) -> Result | None:
    """A run with no logic (`calls.has_no_logic`): from the start state to the done state
    in one compare-and-set write, as Cattle did; the record still shows both transitions.
    None when another write came first (read again and decide again)."""
    spec = target.spec
    run.from_state = from_state
    start = run.record.start_time = run.record.start_time or now()
    run.record.attempts = max(run.record.attempts, 1)
    run.record.data = run.data()
    decided = ending.done(
        _run(run, now()),
        state_field=spec.state_field,
        transitioning=target.transitioning,
        state=target.done,
        handler_writes={},
    )
    writes = with_health(decided.writes or {}, run.obj, spec.state_field)
    version = {"resourceVersion": run.obj["metadata"]["resourceVersion"]}
    done_obj = await run.engine.kube.patch(
        target.kind,
        run.resource_name,
        {"metadata": version, "status": writes},
        namespace=target.namespace,
        subresource="status",
        conflict_ok=True,
    )
    if done_obj is None:
        return None
    run.obj = done_obj
    run.engine.objects.put(target.kind, done_obj)
    run.engine.metrics.runs_started.labels(run.process_name).inc()
    run.transition(spec.state_field, from_state, target.transitioning, start)
    for before, after in decided.transitions:
        run.transition(spec.state_field, before, after)
    await _post_event(run, decided)
    result = await end_run(run, "Succeeded", "Done", "")
    if run.trigger == "delete":
        await _let_go_if_deleted(run, target)
    return result


async def chain(
    run: ProcessRun,
    target: Target,
    process: str,
    data: dict[str, Any],
    handler_writes: Mapping[str, Any],
) -> Result:
    child = await _create_child(run, process, "chain", data)
    run.record.data = data
    decided = ending.chained(
        _run(run, now()),
        target=process,
        child=child,
        handler_writes=run.handler_writes(handler_writes),
    )
    return await _finish(run, target, decided)


async def fail(
    run: ProcessRun, target: Target, message: str, *, reason: ExitReason = "RetriesExhausted"
) -> Result:
    on_error = target.spec.on_error
    if on_error and on_error in run.engine.catalog.processes:
        child = await _create_child(run, on_error, "onError", run.data())
        decided = ending.on_error(_run(run, now()), message=message, target=on_error, child=child)
    else:
        decided = ending.exhausted(_run(run, now()), message=message, reason=reason)
    return await _finish(run, target, decided)


async def done_then_chain(
    run: ProcessRun, target: Target, process: str, handler_writes: Mapping[str, Any]
) -> Result:
    """Done, then the chain the run named (`spec.chain`), which receives its data."""
    child = await _create_child(run, process, "chain", run.record.data or run.data())
    spec = target.spec
    decided = ending.done_then_chained(
        _run(run, now()),
        state_field=spec.state_field,
        transitioning=(run.obj.get("status") or {}).get(spec.state_field, ""),
        state=target.done,
        handler_writes=run.handler_writes(handler_writes),
        target=process,
        child=child,
    )
    return await _finish(run, target, decided)


async def already_done(run: ProcessRun, target: Target, decision: Decision) -> Result:
    at, state = _run(run, now()), decision.state or ""
    if run.chain is None:
        return await _finish(run, target, ending.already_done(at, state=state))
    child = await _create_child(run, run.chain, "chain", run.data())
    decided = ending.already_done_chained(at, state=state, target=run.chain, child=child)
    return await _finish(run, target, decided)


async def cycle(run: ProcessRun, target: Target, decision: Decision) -> Result:
    return await _finish(run, target, ending.cycle(_run(run, now()), message=decision.reason))


async def cancel(run: ProcessRun, target: Target, decision: Decision) -> Result:
    decided = ending.canceled(
        _run(run, now()), message=decision.reason, handed_over=decision.handed_over
    )
    return await _finish(run, target, decided)


async def refused(run: ProcessRun, target: Target, message: str) -> Result:
    """The API server refused a write of the run's (a handler's status writes that an
    admission policy or the schema refuses): the run ends Failed and lets go, visibly."""
    decided = ending.Ending(
        "Failed",
        "Invalid",
        message,
        ending.Event("ProcessFailed", f"{run.process_name}: {message}", "Warning"),
        writes_of.let_go(message),
    )
    return await _finish(run, target, decided)


async def _finish(run: ProcessRun, target: Target, decided: ending.Ending) -> Result:
    end = now()
    if decided.writes is not None:
        await run.write_held(target, decided.writes)
    for before, after in decided.transitions:
        run.transition(target.spec.state_field, before, after)
    if decided.chained_to:
        run.record.chained_to = decided.chained_to
    summary = (decided.writes or {}).get(writes_of.WIRE["last_run"])
    if summary:
        end = RunSummary.model_validate(summary).end_time or end
    await _post_event(run, decided)
    return await end_run(run, decided.phase, decided.reason, decided.message, end=end)


async def _post_event(run: ProcessRun, decided: ending.Ending) -> None:
    if decided.event is not None and run.obj:
        await _post(run, decided.event)


async def _post(run: ProcessRun, event: ending.Event) -> None:
    await run.engine.events.post_once(
        run.obj,
        event.reason,
        event.note,
        name=f"{run.name[:240]}.{run.uid[:8]}",
        type=event.type,
    )


async def finish_from_summary(run: ProcessRun, target: Target, last: Mapping[str, Any]) -> Result:
    """The object's last write named this run as ended, but the run's own record was
    not written: complete it from the object's `lastRun` (`ending.resumed`), and post
    its Event (once: it has a name of its own)."""
    summary = RunSummary.model_validate(last)
    target = target.along(summary.from_state)
    spec = target.spec
    way = ending.Way(spec.state_field, target.transitioning, target.done, spec.on_error)
    decided = ending.resumed(
        summary,
        run.record,
        run=run.name,
        process=run.process_name,
        way=way,
        holder_process=(run.obj.get("status") or {}).get("process"),
        now=now(),
    )
    run.from_state = summary.from_state
    for before, after, at in decided.transitions:
        run.transition(spec.state_field, before, after, at)
    run.record.start_time = decided.start_time
    run.record.chained_to = decided.chained_to
    run.record.data = decided.data
    if decided.event is not None and run.obj:
        await _post(run, decided.event)
    return await end_run(run, decided.phase, decided.reason, decided.message, end=summary.end_time)


async def end_run(
    run: ProcessRun,
    phase: RunPhase,
    reason: ExitReason,
    message: str,
    *,
    end: datetime | None = None,
) -> Result:
    run.record.exit_reason = reason
    run.record.end_time = end or now()
    metrics = run.engine.metrics
    metrics.runs_finished.labels(run.process_name, reason).inc()
    run.log.log(
        logging.INFO if phase == "Succeeded" else logging.WARNING,
        "%s ended %s (%s)%s",
        run.name,
        phase,
        reason,
        f": {message}" if message else "",
    )
    if run.record.start_time is not None:
        metrics.run_duration.labels(run.process_name).observe(
            (run.record.end_time - run.record.start_time).total_seconds()
        )
    run.record.next_attempt_time = None
    # The final record is also adopted (labelled, owned by the object): one write.
    await run.write_record(phase=phase, message=message, force=True)
    return Result(Outcome.ENDED)


async def _let_go_if_deleted(run: ProcessRun, target: Target) -> None:
    """After the record (the object's runs go with it): killed in between, the object
    controller lets go on restart, by the same rule."""
    catalog = run.engine.catalog
    status = run.obj.get("status") or {}
    rule = deletion.decide(
        status,
        catalog.triggered(run.type_name, "delete"),
        catalog.delete_process(run.type_name, status),
        target.resource.spec.initial,
    )
    if rule.step is deletion.Step.GO:
        await finalizers.release(run.engine.kube, target.kind, run.resource_name, target.namespace)


async def _create_child(run: ProcessRun, process: str, trigger: str, data: dict[str, Any]) -> str:
    name = run_name(run.resource_name, process, run.uid)
    body = run_manifest(
        name=name,
        namespace=run.namespace,
        process=process,
        obj=run.obj,
        trigger=trigger,
        data=data,
        parent=run.name,
    )
    await run.engine.kube.create(PROCESS_INSTANCES, body, run.namespace, exists_ok=True)
    return name


async def abandon(engine: Engine, pi: Mapping[str, Any]) -> None:
    """Lets go of the object a deleted run held, saying where it is left and which
    processes may start from there."""
    name = pi["metadata"]["name"]
    process = pi["spec"]["process"]
    resource = engine.catalog.resources.get(process.partition(".")[0])
    definition = engine.catalog.processes.get(process)
    if resource is None:
        return
    kind = kind_of(resource)
    namespace = pi["metadata"]["namespace"] if kind.namespaced else None
    obj_name = pi["spec"]["resource"]["name"]
    # The conditions (and state) from the newest body seen: a read here would only be for them.
    known = engine.objects.get(kind, obj_name, namespace) or {}
    state_field = definition.spec.state_field if definition is not None else "state"
    transitioning = ending.left_in(definition, (known.get("status") or {}).get(state_field))
    processes = engine.catalog.processes_of(resource.metadata.name or "")
    ways_out = ending.ways_out(definition, transitioning, processes)
    message = ending.deleted_message(name, transitioning, ways_out)
    writes = with_health(writes_of.let_go(message), known, state_field)
    try:
        await engine.kube.patch(
            kind,
            obj_name,
            writes_of.held_patch(name, writes),
            namespace=namespace,
            subresource="status",
            patch_type="json",
            missing_ok=True,
        )
    except ApiError as error:
        if error.status == 422 and not await _still_held(engine, kind, obj_name, namespace, name):
            return  # another run (or none) holds it now: nothing of this run's to let go of
        logger.warning("could not release the object of deleted run %s: %s", name, error)


async def _still_held(
    engine: Engine, kind: Kind, obj_name: str, namespace: str | None, run: str
) -> bool:
    """Whether the object still names `run` as its holder: a refused held write is read
    from what the API server holds, never from its message (as `ProcessRun.write_held`)."""
    current = await engine.kube.get(kind, obj_name, namespace, missing_ok=True)
    return bool(((current or {}).get("status") or {}).get("activeRun") == run)
