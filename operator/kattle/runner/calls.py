"""Calls a run's handlers in Cattle's order, each until `machine.outcome` says it is done.

This module does the I/O of a call (the request, the log entry, metrics, Events, the wait
before the next attempt); what a call comes to is decided in `machine/outcome.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from kattle.api.processdefinition import ProcessDefinition
from kattle.api.processinstance import CallOutcome, ExitReason, HandlerCall
from kattle.api.webhook import ProcessEvent, ProcessReply, Progress, RunInfo
from kattle.machine import delegation, idempotency
from kattle.machine import outcome as outcomes
from kattle.machine import status as writes_of
from kattle.machine.catalog import Step, overridden, without_logic
from kattle.machine.merge import merge
from kattle.machine.names import idempotency_key
from kattle.machine.selectors import applies
from kattle.runner import endings, related, replays
from kattle.runner.driving import Result, Target, now
from kattle.runner.retries import retry_later, wait_for_retry_time
from kattle.webhooks.client import HandlerCallError

if TYPE_CHECKING:
    from kattle.runner.run import ProcessRun

# A call that lasts this long shows the run `Running` (one write); a run whose handlers
# answer sooner goes from its last recorded phase straight to the next one, saving a write
# for a phase nobody could have seen.
RUNNING_AFTER_SECONDS = 0.25


@dataclass
class _Call:
    """One attempt: its log entry, the reply if any, and what it came to."""

    entry: HandlerCall
    reply: ProcessReply | None
    result: outcomes.CallResult
    timeout: bool = False


class _ExhaustedError(Exception):
    def __init__(self, message: str, reason: ExitReason) -> None:
        super().__init__(message)
        self.reason = reason


async def run_handlers(
    run: ProcessRun,
    target: Target,
    carried: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> Result:
    """Calls `target`'s handlers and ends the run, or hands it to a delegate. `carried`:
    the data and status writes a delegating process handed on."""
    await wait_for_retry_time(run)
    plan = await _serving(run, run.engine.catalog.plan(target.process))
    skipped: set[int] = set()
    if carried is None and run.segment:  # resumed in a process it was handed to
        carried = (run.record.data or run.data(), run.record.status_writes)
    if carried is None:
        # A replay picks up where the run it replays failed; any other run starts afresh.
        start = await replays.starting_point(run, plan)
        carried, skipped = (start.data or run.data(), start.writes), set(start.skipped)
    data, handler_writes = carried[0], dict(carried[1])
    failure = await related.run_steps(run, target, "before", data)
    if failure is not None:
        return await _failed(run, target, data, handler_writes, failure.message, failure.reason)
    delegate = target.spec.delegate
    for step in plan:
        if step.index in skipped:
            continue
        try:
            reply = await _call_until_done(run, target, step, data)
        except _ExhaustedError as exhausted:
            return await _failed(
                run, target, data, handler_writes, str(exhausted), exhausted.reason
            )
        if reply is None:  # failed for good with failurePolicy Ignore
            continue
        data = merge(data, reply.data or {})
        handler_writes = merge(handler_writes, reply.status or {})
        delegate = reply.delegate or delegate
        if target.spec.handler_mode == "FirstResult" and not reply.continue_:
            skipped |= _override(run, plan, step)
        if reply.chain:
            return await endings.chain(run, target, reply.chain, data, handler_writes)
    run.record.data = data
    after = await related.run_steps(run, target, "after", data)
    if after is not None:
        return await _failed(run, target, data, handler_writes, after.message, after.reason)
    if delegate:
        return await _delegate(run, target, delegate, data, handler_writes)
    if run.chain:
        return await endings.done_then_chain(run, target, run.chain, handler_writes)
    return await endings.done(run, target, handler_writes)


async def has_no_logic(run: ProcessRun, target: Target) -> bool:
    """`machine.catalog.without_logic` for this run, reading the plan only when it matters."""
    if not without_logic(target.spec, [], run.trigger, run.chain):
        return False
    serving = await _serving(run, run.engine.catalog.plan(target.process))
    return without_logic(target.spec, serving, run.trigger, run.chain)


async def _delegate(
    run: ProcessRun,
    target: Target,
    process: str,
    data: dict[str, Any],
    handler_writes: dict[str, Any],
) -> Result:
    """Hands the run to `process` (Cattle's delegate): the record first, so a restart
    knows where the run went, then the object, straight into the delegate's transitioning
    state; then the delegate's handlers."""
    definition = run.engine.catalog.processes.get(process)
    spec = definition.spec if definition is not None else None
    why = delegation.problem(target.process, target.spec, target.done, process, spec)
    if why is None and len(run.record.delegated_to) >= delegation.MAX_DELEGATIONS:
        why = f"handed over {delegation.MAX_DELEGATIONS} times in one run: a delegation loop"
    if why is not None or definition is None:
        return await _failed(run, target, data, handler_writes, why or "", "Invalid")
    following = Target(definition, target.resource, target.kind, target.namespace)
    following = following.along(target.done)
    run.record.data, run.record.status_writes = data, handler_writes
    if run.record.delegated_to[-1:] != [process]:
        run.record.delegated_to.append(process)
    await run.write_record(phase="Running", message=f"delegated to {process}", durable=True)
    field = target.spec.state_field
    writes = writes_of.delegated(
        process=process, state_field=field, transitioning=following.transitioning
    )
    await run.write_held(following, writes)
    run.transition(field, target.transitioning, following.transitioning)
    run.segment = process
    return await run_handlers(run, following, (data, handler_writes))


async def _failed(
    run: ProcessRun,
    target: Target,
    data: dict[str, Any],
    handler_writes: dict[str, Any],
    message: str,
    reason: ExitReason,
) -> Result:
    """Ends the run failed, keeping what a replay of it needs: the data so far, and what
    the handlers that succeeded asked to write."""
    run.record.data = data
    run.record.status_writes = handler_writes
    return await endings.fail(run, target, message, reason=reason)


async def _call_until_done(
    run: ProcessRun, target: Target, step: Step, data: dict[str, Any]
) -> ProcessReply | None:
    """Calls one handler until it succeeds; retries and backoff as in Cattle. None: it
    failed for good and its failurePolicy ignores that."""
    key = idempotency_key(run.seed, step.index, step.handler)
    attempt = 1 + sum(1 for c in run.record.handler_calls if c.idempotency_key == key)
    rules = outcomes.Rules(step.spec.retry_limit, step.spec.failure_policy == "Ignore")
    while True:
        call = await _call(run, target, step, attempt, key, data)
        outcome = outcomes.decide(call.result, rules)
        call.entry.outcome, call.entry.message = _logged(call, outcome)
        run.add_call(call.entry)
        if outcome.failed:
            run.engine.events.post(
                run.obj, "HandlerFailed", outcomes.failed_event(outcome), type="Warning"
            )
        if outcome.kind is outcomes.Kind.SUCCEEDED:
            return call.reply
        if outcome.kind is outcomes.Kind.IGNORED:
            run.add_call(_ignored(call.entry, attempt))
            return None
        if outcome.kind is outcomes.Kind.EXHAUSTED:
            raise _ExhaustedError(outcome.message, cast(ExitReason, outcome.reason))
        if call.reply is not None and call.reply.progress is not None:
            await _show_progress(run, target, call.reply.progress)
        await retry_later(run, target, outcome)
        attempt += 1


async def _show_progress(run: ProcessRun, target: Target, progress: Progress) -> None:
    """On the object while the step waits to be called again (one write, when it changed)."""
    writes = writes_of.progressing(progress.percent, progress.message)
    if not writes_of.is_noop(run.obj.get("status") or {}, writes):
        await run.write_held(target, writes)


def _logged(call: _Call, outcome: outcomes.Outcome) -> tuple[CallOutcome, str]:
    """The call's outcome and message in the run's log."""
    reply_message = (call.reply.message or "") if call.reply is not None else ""
    if call.result.error is None and call.reply is not None:
        if call.reply.chain:
            return "Chained", reply_message
        if call.result.retry_after is not None:
            progress = call.reply.progress
            if progress is not None and not reply_message:
                shown = f"{progress.percent}%" if progress.percent is not None else ""
                reply_message = ": ".join(p for p in (shown, progress.message or "") if p)
            return "RetryAfter", reply_message
        return "Succeeded", reply_message
    return ("Timeout" if call.timeout else "Error"), outcome.message


async def _serving(run: ProcessRun, plan: list[Step]) -> list[Step]:
    """The steps whose handlers serve this object (`namespaceSelector`, `objectSelector`).
    Each keeps its index in the whole plan, so idempotency keys do not depend on which
    others apply."""
    if not any(s.spec.namespace_selector or s.spec.object_selector for s in plan):
        return plan
    meta = run.obj.get("metadata") or {}
    namespace = meta.get("namespace")
    namespace_labels = None
    if namespace and any(s.spec.namespace_selector for s in plan):
        namespace_labels = await run.engine.namespaces.labels(run.engine.kube, namespace)
    labels = meta.get("labels") or {}
    return [s for s in plan if applies(s.spec, labels, namespace_labels)]


def _override(run: ProcessRun, plan: list[Step], answered: Step) -> set[int]:
    """The steps `answered`'s reply ends the handler phase before; its log entry says so."""
    later = overridden(plan, answered)
    if later:
        entry = run.record.handler_calls[-1]
        names = ", ".join(s.handler for s in later)
        note = f"answered first (handlerMode FirstResult): {names} not called"
        entry.message = f"{entry.message}; {note}" if entry.message else note
    return {s.index for s in later}


def _ignored(entry: HandlerCall, attempt: int) -> HandlerCall:
    return HandlerCall(
        handler=entry.handler,
        phase=entry.phase,
        attempt=attempt,
        idempotency_key=entry.idempotency_key,
        start=entry.stop or entry.start,
        stop=entry.stop,
        outcome="Ignored",
        message=f"failed {attempt} times; ignored (failurePolicy Ignore)",
    )


async def _call(
    run: ProcessRun, target: Target, step: Step, attempt: int, key: str, data: dict[str, Any]
) -> _Call:
    """One request to the handler, every way it can fail turned into a message."""
    event = ProcessEvent(
        process=target.process,
        phase=step.phase,
        handler=step.handler,
        attempt=attempt,
        idempotency_key=key,
        run=RunInfo(name=run.name, namespace=run.namespace, uid=run.uid, trigger=run.trigger),
        from_state=run.from_state or "",
        transitioning=target.transitioning,
        done=target.done,
        resource=run.obj,
        data=data,
    )
    entry = HandlerCall(
        handler=step.handler, phase=step.phase, attempt=attempt, idempotency_key=key, start=now()
    )
    metrics = run.engine.metrics
    answer = await _ask(run, step, event)
    reply, error, timeout = answer.reply, answer.error, answer.timed_out
    entry.stop = now()
    metrics.handler_calls.labels(step.handler, step.phase).observe(
        (entry.stop - entry.start).total_seconds()
    )
    if reply is not None:
        if reply.error is not None:
            metrics.handler_errors.labels(step.handler, "error_reply").inc()
        _post_requested(run, step.handler, reply)
        if error is None:
            error = await _act_on_reply(run, target, step, reply)
    result = outcomes.CallResult(
        step.handler,
        attempt,
        error=error,
        retry_after=None if reply is None else reply.retry_after_seconds,
        chains=bool(reply is not None and reply.chain),
        permanent=answer.permanent,
        timed_out=timeout,
    )
    return _Call(entry, reply, result, timeout)


@dataclass(frozen=True)
class _Answer:
    reply: ProcessReply | None
    error: str | None
    permanent: bool = False
    timed_out: bool = False


async def _ask(run: ProcessRun, step: Step, event: ProcessEvent) -> _Answer:
    """The handler's reply to `event`, or why there is none. With `--check-idempotency`
    the step is called twice with the same event, and two replies that differ are a
    permanent error naming the differences (retrying would not make the handler right)."""
    webhooks = run.engine.webhooks
    try:
        reply = await _showing_running(run, webhooks.call(step.handler, step.spec, event))
        if run.engine.check_idempotency:
            again = await webhooks.call(step.handler, step.spec, event)
            problem = idempotency.verdict(
                step.handler, event.idempotency_key, reply.to_wire(), again.to_wire()
            )
            if problem is not None:
                return _Answer(reply, problem, permanent=True)
    except HandlerCallError as failure:
        run.engine.metrics.handler_errors.labels(step.handler, failure.reason).inc()
        return _Answer(None, str(failure), timed_out=failure.timeout)
    return _Answer(reply, reply.error, permanent=bool(reply.permanent and reply.error))


async def _showing_running(run: ProcessRun, call: Awaitable[ProcessReply]) -> ProcessReply:
    """The call's reply; if the call lasts and the run's record does not say `Running`
    yet, it says so meanwhile (`kubectl wait --for=jsonpath={.status.phase}=Running`)."""
    if run.recorded_phase == "Running":
        return await call
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=RUNNING_AFTER_SECONDS)
        if not done:
            await run.write_record(phase="Running", message="")
        return await task
    finally:
        task.cancel()


def _post_requested(run: ProcessRun, handler: str, reply: ProcessReply) -> None:
    for request in reply.events:
        run.engine.events.post(
            run.obj,
            request.reason,
            f"{handler}: {request.message}",
            type=request.type,
            requested=True,
        )


async def _act_on_reply(
    run: ProcessRun, target: Target, step: Step, reply: ProcessReply
) -> str | None:
    """Checks what a successful reply asks for and runs the related runs it requests
    (their outcomes go into the reply's data); why the step failed, if it did."""
    problem = _reply_problem(run, target.definition, step.handler, reply)
    if problem is not None or not reply.runs:
        return problem
    outcomes_by_run, failure = await related.run_requested(
        run, target, step.index, step.handler, reply.runs
    )
    reply.data = merge(reply.data or {}, {"runs": outcomes_by_run})
    return failure


def _reply_problem(
    run: ProcessRun, definition: ProcessDefinition, handler: str, reply: ProcessReply
) -> str | None:
    """A reply that parsed but asks for what the run may not do."""
    if reply.chain:
        chained = run.engine.catalog.processes.get(reply.chain)
        if chained is None:
            return f"the reply chains {reply.chain}, which has no ProcessDefinition"
        if chained.spec.resource_type != definition.spec.resource_type:
            return f"the reply chains {reply.chain}, a process of another resource type"
    if reply.status:
        return _status_problem(run, handler, reply.status)
    return None


def _status_problem(run: ProcessRun, handler: str, writes: Mapping[str, Any]) -> str | None:
    """Handlers may not write the state fields the type's processes keep (the common
    ones, like `state`, are refused when the reply is parsed)."""
    fields = {p.spec.state_field for p in run.engine.catalog.processes_of(run.type_name)}
    taken = sorted(fields.intersection(writes))
    if not taken:
        return None
    return (
        f"handler {handler} may not write status.{', status.'.join(taken)}: a state field "
        f"of {run.type_name}'s processes"
    )
