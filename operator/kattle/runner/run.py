"""Runs one process on one object: admit, transition, call handlers, set done, record.

Cattle's semantics on Kubernetes' mechanisms (DESIGN.md section 3):

- The lock is the object's `status.activeRun`. A run takes it with a compare-and-set PATCH
  (the object's resourceVersion is in the patch) that also sets the transitioning state, so
  admission and transition are one write and two runs can never both win.
- While a run holds the object, its writes carry a JSON-patch `test` of `activeRun`: a run
  that lost the object (a user cleared it, another operator took over) cannot write over it.
- The ProcessInstance is written when the run waits, fails, retries and ends, not after each
  successful handler call: on a restart every handler is called again with the same
  idempotency key, which handlers must honour anyway (a reply can be lost on the wire too).
- Every write the run needs to resume is on the API server, so an operator killed at any
  point resumes the run from what it finds there.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from kattle.api.generated import RunSummary
from kattle.api.processdefinition import ProcessDefinition, ProcessDefinitionSpec
from kattle.api.processinstance import (
    FINAL_PHASES,
    HISTORY_MAX,
    ExitReason,
    HandlerCall,
    ProcessInstanceStatus,
    RunPhase,
    Transition,
)
from kattle.api.resourcedefinition import ResourceDefinition
from kattle.api.webhook import ProcessEvent, ProcessReply, RunInfo
from kattle.kube.client import ApiError, Kind, KubeClient
from kattle.kube.events import EventRecorder
from kattle.kube.kinds import PROCESS_INSTANCES, kind_of
from kattle.machine.admission import Verdict, current_state, decide
from kattle.machine.backoff import retry_delay
from kattle.machine.catalog import Catalog, Step
from kattle.machine.merge import merge
from kattle.machine.names import idempotency_key, owner_reference, run_name
from kattle.observability.metrics import Metrics
from kattle.runner.cache import ObjectCache
from kattle.runner.history import RESOURCE_LABEL, TYPE_LABEL
from kattle.runner.slots import RunSlots
from kattle.webhooks.client import HandlerCallError, WebhookClient

logger = logging.getLogger(__name__)

FINALIZER = "kattle.dev/processes"
# A run naming a process the operator has not heard of yet waits this long for its
# definition: a ProcessDefinition and a ProcessInstance applied together race.
DEFINITION_GRACE_SECONDS = 5.0
DEFAULT_ACTIVE_RUNS = 200


ObjectKey = tuple[str, str, str]  # (namespace of the runs, resource type, object name)


class Outcome(enum.Enum):
    ENDED = "ended"
    WAITING = "waiting"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    holder: str | None = None


@dataclass
class Engine:
    """What every run needs: the API, the handlers, the definitions, Events."""

    kube: KubeClient
    webhooks: WebhookClient
    catalog: Catalog
    events: EventRecorder
    objects: ObjectCache = field(default_factory=ObjectCache)
    metrics: Metrics = field(default_factory=Metrics)
    slots: RunSlots = field(default_factory=lambda: RunSlots(DEFAULT_ACTIVE_RUNS))
    # Reads every definition into the catalog (set by the wiring; at most once a second).
    reload_catalog: Callable[[], Awaitable[None]] | None = None
    # Whether this operator has seen a run of an object end: saves reading the run back
    # before the next one takes the object (set by the scheduler).
    known_ended: Callable[[ObjectKey, str], bool] = field(default=lambda key, name: False)
    _reloaded_at: float = field(default=float("-inf"), repr=False)

    async def refresh_catalog(self) -> None:
        loop = asyncio.get_running_loop()
        if self.reload_catalog is None or loop.time() - self._reloaded_at < 1.0:
            return
        self._reloaded_at = loop.time()
        await self.reload_catalog()


class LostObjectError(Exception):
    """The object is no longer held by this run."""


def now() -> datetime:
    return datetime.now(UTC)


class ProcessRun:
    """One ProcessInstance being driven. `drive` returns when it ended or must wait."""

    def __init__(self, engine: Engine, pi: dict[str, Any]) -> None:
        self.engine = engine
        self.pi = pi
        meta = pi["metadata"]
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        self.uid: str = meta["uid"]
        spec = pi["spec"]
        self.process_name: str = spec["process"]
        self.resource_name: str = spec["resource"]["name"]
        self.resource_uid: str | None = spec["resource"].get("uid")
        self.trigger: str = spec.get("trigger", "manual")
        self.input: dict[str, Any] = spec.get("data") or {}
        self.record = ProcessInstanceStatus.model_validate(pi.get("status") or {})
        self._written = self.record.to_wire()
        self.kind: Kind | None = None
        self.obj_namespace: str | None = None
        self.obj: dict[str, Any] = {}
        self._trust_cache = True
        self.from_state: str | None = None  # once the run has the object
        # Every line about this run names it, its process and its object: JSON logs carry
        # them as one field, `kattle` (LogRecord attributes such as `process` are taken).
        self.log = logging.LoggerAdapter(
            logger,
            {
                "kattle": {
                    "run": f"{self.namespace}/{self.name}",
                    "process": self.process_name,
                    "object": self.resource_name,
                }
            },
        )

    # -- the flow -------------------------------------------------------------------------

    async def drive(self) -> Result:
        if self.record.phase in FINAL_PHASES:
            return Result(Outcome.ENDED)
        while True:
            result = await self._step()
            if result is not None:
                return result

    async def _step(self) -> Result | None:
        """One pass; None means a compare-and-set lost a race: read again and retry."""
        definition = await self._process_definition()
        if definition is None:
            return await self._end(
                "Failed", "Invalid", f"no ProcessDefinition named {self.process_name}"
            )
        spec = definition.spec
        resource = self.engine.catalog.resources.get(spec.resource_type)
        problems = self.engine.catalog.process_problems(self.process_name)
        if resource is None or problems:
            return await self._end(
                "Failed", "Invalid", f"{self.process_name} cannot run: {'; '.join(problems)}"
            )
        self.kind = kind_of(resource)
        self.obj_namespace = self.namespace if self.kind.namespaced else None
        # The cached body is trusted for an admission only (a compare-and-set checks it);
        # any other verdict is confirmed with a fresh read first.
        cached = self.engine.objects.get(self.kind, self.resource_name, self.obj_namespace)
        for obj in (cached, None) if cached is not None and self._trust_cache else (None,):
            if obj is None:
                obj = await self.engine.kube.get_or_none(
                    self.kind, self.resource_name, self.obj_namespace
                )
                if obj is not None:
                    self.engine.objects.put(self.kind, obj)
            gone = obj is None or (
                self.resource_uid is not None and obj["metadata"]["uid"] != self.resource_uid
            )
            if gone:
                continue
            assert obj is not None
            status = obj.get("status") or {}
            holder: str | None = status.get("activeRun") or None
            alive = holder is not None and holder != self.name and await self._run_alive(holder)
            decision = decide(
                status=status,
                run=self.name,
                process=self.process_name,
                spec=spec,
                initial=resource.spec.initial(spec.state_field),
                holder_alive=alive,
            )
            if decision.verdict is Verdict.ADMIT:
                break
        self._trust_cache = False  # a retry after a lost race reads afresh
        if gone or obj is None:
            return await self._end(
                "Canceled",
                "ResourceGone",
                f"{resource.spec.names.kind} {self.resource_name} does not exist",
            )
        self.obj = obj
        if decision.verdict is Verdict.FINISHED:
            return await self._finish_from_summary(spec, status["lastRun"])
        parent = self.pi["spec"].get("parent")
        if holder == self.name and parent and await self._unfinished(parent):
            # Handed the object, but the parent's record is not final: the operator stopped
            # in between. The parent goes first, so it finishes from the object's lastRun
            # (which names it until this run ends).
            return Result(Outcome.WAITING, parent)
        if decision.verdict is Verdict.WAIT:
            await self._record(phase="Pending", message=decision.reason)
            return Result(Outcome.WAITING, holder)
        if decision.verdict is Verdict.CANCEL:
            if holder == self.name:
                # Handed over to us (chain or onError) but we cannot start: let go, visibly.
                await self._write_held(
                    [
                        *_set("transitioning", "error"),
                        *_set("transitioningMessage", decision.reason),
                        *_set("process", None),
                        *_set("activeRun", None),
                    ]
                )
            self.engine.events.post(
                obj, "ProcessCanceled", f"{self.process_name}: {decision.reason}", type="Warning"
            )
            return await self._end("Canceled", "Canceled", decision.reason)
        field = spec.state_field
        if decision.verdict is Verdict.ADMIT:
            if any(t.to == spec.transitioning for t in self.record.transitions):
                # This run took the object before and lost it since (activeRun was cleared):
                # taking it again would run its process twice.
                return await self._end(
                    "Canceled",
                    "Canceled",
                    "the object is no longer held by this run (activeRun was cleared "
                    "after it took it); the process is not run twice",
                )
            previous = await self._unrecorded_previous(status)
            if previous is not None:
                # The run before ended on the object but not yet in its own record (the
                # operator stopped in between): it goes first, or once the object's lastRun
                # names this run, the previous one could never tell that it had ended.
                await self._record(phase="Pending", message=f"waiting for {previous} to end")
                return Result(Outcome.WAITING, previous)
            from_state = decision.state or ""
            try:
                self.obj = await self.engine.kube.patch(
                    self.kind,
                    self.resource_name,
                    {
                        "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                        "status": {
                            field: spec.transitioning,
                            "transitioning": "yes",
                            "transitioningMessage": None,
                            "process": self.process_name,
                            "activeRun": self.name,
                            "previousState": from_state,
                        },
                    },
                    namespace=self.obj_namespace,
                    subresource="status",
                )
            except ApiError as error:
                if error.conflict:
                    return None
                raise
            self.engine.objects.put(self.kind, self.obj)
            self.engine.metrics.runs_started.labels(self.process_name).inc()
            self.log.info(
                "%s started on %s: %s -> %s",
                self.name,
                self.resource_name,
                from_state,
                spec.transitioning,
            )
            # No Event here: the run's one Normal Event is posted when it ends (an Event is
            # a write; the object's status already shows the run while it lasts).
            self._transition(field, from_state, spec.transitioning)
        else:
            from_state = status.get("previousState") or ""
            if not any(t.to == spec.transitioning for t in self.record.transitions):
                # The operator stopped between the transition and its first record.
                self._transition(field, from_state, spec.transitioning)
        self.from_state = from_state
        if self.record.start_time is None:
            self.record.start_time = now()
        self.record.attempts = max(self.record.attempts, 1)
        self.record.phase = "Running"
        try:
            return await self._run_handlers(definition, from_state)
        except LostObjectError as error:
            return await self._end("Canceled", "Canceled", str(error))

    async def _run_handlers(self, definition: ProcessDefinition, from_state: str) -> Result:
        spec = definition.spec
        await self._wait_for_retry_time()
        data = merge({}, self.input)
        status_writes: dict[str, Any] = {}
        for step in self.engine.catalog.plan(self.process_name):
            try:
                reply = await self._call_until_done(step, definition, from_state, data)
            except _ExhaustedError as failure:
                self.record.data = data
                return await self._fail(definition, str(failure))
            if reply is None:  # failed for good with failurePolicy Ignore
                continue
            data = merge(data, reply.data or {})
            status_writes = merge(status_writes, reply.status or {})
            if reply.chain:
                return await self._chain(reply.chain, data, status_writes)
        self.record.data = data
        return await self._done(spec.state_field, spec.done, status_writes)

    async def _call_until_done(
        self, step: Step, definition: ProcessDefinition, from_state: str, data: dict[str, Any]
    ) -> ProcessReply | None:
        """Calls one handler until it succeeds; retries and backoff as in Cattle."""
        key = idempotency_key(self.uid, step.index, step.handler)
        attempt = 1 + sum(1 for c in self.record.handler_calls if c.idempotency_key == key)
        while True:
            event = ProcessEvent(
                process=self.process_name,
                phase=step.phase,
                handler=step.handler,
                attempt=attempt,
                idempotency_key=key,
                run=RunInfo(
                    name=self.name, namespace=self.namespace, uid=self.uid, trigger=self.trigger
                ),
                from_state=from_state,
                transitioning=definition.spec.transitioning,
                done=definition.spec.done,
                resource=self.obj,
                data=data,
            )
            call = HandlerCall(
                handler=step.handler,
                phase=step.phase,
                attempt=attempt,
                idempotency_key=key,
                start=now(),
            )
            timeout = False
            reply: ProcessReply | None = None
            try:
                reply = await self.engine.webhooks.call(step.handler, step.spec, event)
                error = reply.error
            except HandlerCallError as failure:
                error, timeout = str(failure), failure.timeout
                self.engine.metrics.handler_errors.labels(step.handler, failure.reason).inc()
            call.stop = now()
            self.engine.metrics.handler_calls.labels(step.handler, step.phase).observe(
                (call.stop - call.start).total_seconds()
            )
            if reply is not None and reply.error is not None:
                self.engine.metrics.handler_errors.labels(step.handler, "error_reply").inc()
            if reply is not None:
                for request in reply.events:
                    self.engine.events.post(
                        self.obj,
                        request.reason,
                        f"{step.handler}: {request.message}",
                        type=request.type,
                        requested=True,
                    )
            if error is None and reply is not None and reply.chain:
                error = self._chain_problem(reply.chain, definition)
            if error is None and reply is not None and reply.status:
                error = self._status_problem(step.handler, reply.status)
            if error is None and reply is not None:
                if reply.retry_after_seconds is not None and not reply.chain:
                    call.outcome, call.message = "RetryAfter", reply.message or ""
                    self._add_call(call)
                    if attempt > step.spec.retry_limit:
                        error = (
                            f"handler {step.handler} asked to retry more than its "
                            f"retryLimit of {step.spec.retry_limit} times"
                        )
                    else:
                        await self._retry_later(
                            float(reply.retry_after_seconds),
                            f"handler {step.handler} asked to be called again in "
                            f"{reply.retry_after_seconds}s",
                            error=False,
                        )
                        attempt += 1
                        continue
                else:
                    call.outcome = "Chained" if reply.chain else "Succeeded"
                    call.message = reply.message or ""
                    self._add_call(call)
                    return reply
            if call.outcome is None:
                call.outcome, call.message = ("Timeout" if timeout else "Error"), error or ""
                self._add_call(call)
            message = error or "handler failed"
            if attempt > step.spec.retry_limit:
                if step.spec.failure_policy == "Ignore":
                    self._add_call(
                        HandlerCall(
                            handler=step.handler,
                            phase=step.phase,
                            attempt=attempt,
                            idempotency_key=key,
                            start=call.stop,
                            stop=call.stop,
                            outcome="Ignored",
                            message=f"failed {attempt} times; ignored (failurePolicy Ignore)",
                        )
                    )
                    self.engine.events.post(
                        self.obj,
                        "HandlerIgnored",
                        f"{message} (failurePolicy Ignore)",
                        type="Warning",
                    )
                    return None
                raise _ExhaustedError(message, attempt)
            await self._retry_later(retry_delay(attempt), message, error=True)
            attempt += 1

    # -- endings ----------------------------------------------------------------------------

    async def _done(self, field: str, done: str, status_writes: dict[str, Any]) -> Result:
        transitioning = self.obj.get("status", {}).get(field, "")
        end = now()
        await self._write_held(
            [
                *self._status_ops(status_writes),
                *_set(field, done),
                *_set("transitioning", "no"),
                *_set("transitioningMessage", None),
                *_set("process", None),
                *_set("activeRun", None),
                *_set("previousState", None),
                *_set("lastRun", self._summary("Succeeded", "Done", end)),
            ]
        )
        self._transition(field, transitioning, done)
        self.engine.events.post(
            self.obj,
            "Done",
            f"{self.process_name}: {_path(self.from_state, transitioning, done)} ({self.name})",
        )
        type_name = self.process_name.partition(".")[0]
        result = await self._end("Succeeded", "Done", "", end=end)
        if (
            self.trigger == "delete"
            and self.engine.catalog.delete_process(type_name, self.obj.get("status") or {}) is None
        ):
            # No further delete process starts from here (Cattle's remove, then purge): go.
            # After the record: the object's runs go with it. Killed in between, the object
            # controller lets go on restart, seeing lastRun name a delete process.
            await self._release_finalizer()
        return result

    async def _chain(
        self, target: str, data: dict[str, Any], status_writes: dict[str, Any]
    ) -> Result:
        child = await self._create_child(target, "chain", data)
        end = now()
        await self._write_held(
            [
                *self._status_ops(status_writes),
                *_set("transitioning", "yes"),
                *_set("process", target),
                *_set("activeRun", child),
                *_set("lastRun", self._summary("Succeeded", "Chained", end, child)),
            ]
        )
        self.engine.events.post(self.obj, "Chained", f"{self.process_name} -> {target} ({child})")
        self.record.data = data
        self.record.chained_to = child
        return await self._end("Succeeded", "Chained", f"chained {target} ({child})", end=end)

    async def _fail(self, definition: ProcessDefinition, message: str) -> Result:
        on_error = definition.spec.on_error
        if on_error and on_error in self.engine.catalog.processes:
            child = await self._create_child(on_error, "onError", merge({}, self.input))
            end = now()
            await self._write_held(
                [
                    *_set("transitioning", "error"),
                    *_set("transitioningMessage", message),
                    *_set("process", on_error),
                    *_set("activeRun", child),
                    *_set("lastRun", self._summary("Failed", "OnError", end, child)),
                ]
            )
            self.engine.events.post(
                self.obj,
                "ProcessFailed",
                f"{self.process_name} failed, {on_error} takes over: {message}",
                type="Warning",
            )
            self.record.chained_to = child
            return await self._end("Failed", "OnError", message, end=end)
        end = now()
        await self._write_held(
            [
                *_set("transitioning", "error"),
                *_set("transitioningMessage", message),
                *_set("process", None),
                *_set("activeRun", None),
                *_set("lastRun", self._summary("Failed", "RetriesExhausted", end)),
            ]
        )
        self.engine.events.post(
            self.obj, "ProcessFailed", f"{self.process_name}: {message}", type="Warning"
        )
        return await self._end("Failed", "RetriesExhausted", message, end=end)

    async def _finish_from_summary(
        self, spec: ProcessDefinitionSpec, last: Mapping[str, Any]
    ) -> Result:
        """The object's last write named this run as ended, but the run's own record was
        not written: complete it from the object's `lastRun`, adding what it lacks."""
        summary = RunSummary.model_validate(last)
        field = spec.state_field
        if not any(t.to == spec.transitioning for t in self.record.transitions):
            self._transition(
                field, summary.from_state or "", spec.transitioning, summary.start_time
            )
        if summary.exit_reason == "Done" and not any(
            t.to == spec.done for t in self.record.transitions
        ):
            self._transition(field, spec.transitioning, spec.done, summary.end_time)
        self.record.start_time = self.record.start_time or summary.start_time
        self.record.chained_to = summary.chained_to or self.record.chained_to
        phase: RunPhase = "Succeeded" if summary.phase == "Succeeded" else "Failed"
        reason = cast(ExitReason, summary.exit_reason or "Done")
        message = self.record.message or ""
        if summary.chained_to and not message:
            message = f"{reason.lower()}: {summary.chained_to}"
        return await self._end(phase, reason, message, end=summary.end_time)

    async def _end(
        self, phase: RunPhase, reason: ExitReason, message: str, *, end: datetime | None = None
    ) -> Result:
        self.record.exit_reason = reason
        self.record.end_time = end or now()
        self.engine.metrics.runs_finished.labels(self.process_name, reason).inc()
        self.log.log(
            logging.INFO if phase == "Succeeded" else logging.WARNING,
            "%s ended %s (%s)%s",
            self.name,
            phase,
            reason,
            f": {message}" if message else "",
        )
        if self.record.start_time is not None:
            self.engine.metrics.run_duration.labels(self.process_name).observe(
                (self.record.end_time - self.record.start_time).total_seconds()
            )
        self.record.next_attempt_time = None
        await self._record(phase=phase, message=message, force=True)
        await self._adopt()
        return Result(Outcome.ENDED)

    # -- helpers ----------------------------------------------------------------------------

    async def _process_definition(self) -> ProcessDefinition | None:
        deadline = asyncio.get_running_loop().time() + DEFINITION_GRACE_SECONDS
        refreshed = False
        while True:
            definition = self.engine.catalog.processes.get(self.process_name)
            if definition is not None or asyncio.get_running_loop().time() > deadline:
                return definition
            if not refreshed:
                # A standby that just took over has not seen what changed while it was
                # paused: read every definition once rather than run on a stale catalog.
                await self.engine.refresh_catalog()
                refreshed = True
                continue
            await asyncio.sleep(0.2)

    async def _unrecorded_previous(self, status: Mapping[str, Any]) -> str | None:
        """The run the object's `lastRun` names, if it is another whose record is not final."""
        last = status.get("lastRun")
        name = last.get("name") if isinstance(last, Mapping) else None
        if not isinstance(name, str) or not name or name == self.name:
            return None
        return name if await self._unfinished(name) else None

    async def _unfinished(self, name: str) -> bool:
        """Whether another run of this object has not ended yet (its record not final)."""
        key = (self.namespace, self.process_name.partition(".")[0], self.resource_name)
        return not self.engine.known_ended(key, name) and await self._run_alive(name)

    async def _run_alive(self, name: str) -> bool:
        other = await self.engine.kube.get_or_none(PROCESS_INSTANCES, name, self.namespace)
        return other is not None and (other.get("status") or {}).get("phase") not in FINAL_PHASES

    def _status_problem(self, handler: str, writes: Mapping[str, Any]) -> str | None:
        """Handlers may not write the state fields the type's processes keep (the common
        ones, like `state`, are refused when the reply is parsed)."""
        type_name = self.process_name.partition(".")[0]
        fields = {p.spec.state_field for p in self.engine.catalog.processes_of(type_name)}
        taken = sorted(fields.intersection(writes))
        if not taken:
            return None
        return (
            f"handler {handler} may not write status.{', status.'.join(taken)}: a state field "
            f"of {type_name}'s processes"
        )

    def _chain_problem(self, target: str, definition: ProcessDefinition) -> str | None:
        chained = self.engine.catalog.processes.get(target)
        if chained is None:
            return f"the reply chains {target}, which has no ProcessDefinition"
        if chained.spec.resource_type != definition.spec.resource_type:
            return f"the reply chains {target}, a process of another resource type"
        return None

    async def _create_child(self, process: str, trigger: str, data: dict[str, Any]) -> str:
        name = run_name(self.resource_name, process, self.uid)
        body = run_manifest(
            name=name,
            namespace=self.namespace,
            process=process,
            obj=self.obj,
            trigger=trigger,
            data=data,
            parent=self.name,
        )
        try:
            await self.engine.kube.create(PROCESS_INSTANCES, body, self.namespace)
        except ApiError as error:
            if not error.already_exists:
                raise
        return name

    async def _wait_for_retry_time(self) -> None:
        """After a restart, a run that was waiting out a backoff waits out the rest."""
        if self.record.phase == "Retrying" and self.record.next_attempt_time:
            remaining = (self.record.next_attempt_time - now()).total_seconds()
            if remaining > 0:
                async with self.engine.slots.lent():
                    await asyncio.sleep(remaining)

    async def _retry_later(self, delay: float, message: str, *, error: bool) -> None:
        self.record.attempts += 1
        self.record.next_attempt_time = now() + timedelta(seconds=delay)
        if error:
            status = self.obj.get("status") or {}
            if (
                status.get("transitioningMessage") != message
                or status.get("transitioning") != "error"
            ):
                await self._write_held(
                    [*_set("transitioning", "error"), *_set("transitioningMessage", message)]
                )
            self.engine.events.post(
                self.obj, "HandlerFailed", f"{message}; retrying in {delay:.1f}s", type="Warning"
            )
        await self._record(phase="Retrying", message=message)
        async with self.engine.slots.lent():
            await asyncio.sleep(delay)
        self.record.next_attempt_time = None

    def _transition(self, field: str, before: str, after: str, at: datetime | None = None) -> None:
        type_name = self.process_name.partition(".")[0]
        self.engine.metrics.transitions.labels(type_name, after).inc()
        self.record.transitions.append(
            Transition.model_validate(
                {"field": field, "from": before, "to": after, "time": at or now()}
            )
        )

    def _summary(
        self, phase: RunPhase, reason: ExitReason, end: datetime, chained_to: str | None = None
    ) -> dict[str, Any]:
        """The object's `lastRun`, written with the run's last write to it: enough for the
        run to finish its record should the operator stop before writing it."""
        return RunSummary(
            name=self.name,
            process=self.process_name,
            phase=phase,
            exit_reason=reason,
            end_time=end,
            from_state=self.from_state,
            start_time=self.record.start_time,
            chained_to=chained_to,
        ).to_wire()

    def _add_call(self, call: HandlerCall) -> None:
        self.record.handler_calls.append(call)
        del self.record.handler_calls[:-HISTORY_MAX]

    def _status_ops(self, writes: Mapping[str, Any]) -> list[dict[str, Any]]:
        current = self.obj.get("status") or {}
        ops = []
        for key, value in writes.items():
            if isinstance(value, Mapping) and isinstance(current.get(key), Mapping):
                value = merge(current[key], value)
            ops.extend(_set(key, value))
        return ops

    async def _write_held(self, ops: list[dict[str, Any]]) -> None:
        """A status write that only lands while this run holds the object."""
        assert self.kind is not None
        patch = [{"op": "test", "path": "/status/activeRun", "value": self.name}, *ops]
        try:
            self.obj = await self.engine.kube.patch(
                self.kind,
                self.resource_name,
                patch,
                namespace=self.obj_namespace,
                subresource="status",
                patch_type="json",
            )
            self.engine.objects.put(self.kind, self.obj)
        except ApiError as error:
            if error.status == 422 and "test" in error.message.lower():
                current = await self.engine.kube.get_or_none(
                    self.kind, self.resource_name, self.obj_namespace
                )
                holder = ((current or {}).get("status") or {}).get("activeRun")
                raise LostObjectError(
                    f"the object is no longer held by this run (activeRun is {holder or 'empty'})"
                ) from None
            raise

    async def _release_finalizer(self) -> None:
        assert self.kind is not None
        for _ in range(10):
            current = await self.engine.kube.get_or_none(
                self.kind, self.resource_name, self.obj_namespace
            )
            if current is None:
                return
            finalizers = current["metadata"].get("finalizers") or []
            if FINALIZER not in finalizers:
                return
            try:
                await self.engine.kube.patch(
                    self.kind,
                    self.resource_name,
                    {
                        "metadata": {
                            "resourceVersion": current["metadata"]["resourceVersion"],
                            "finalizers": [f for f in finalizers if f != FINALIZER],
                        }
                    },
                    namespace=self.obj_namespace,
                )
                return
            except ApiError as error:
                if not error.conflict:
                    raise

    async def _record(self, *, phase: RunPhase, message: str, force: bool = False) -> None:
        """Writes the run's status if it changed (or always, with `force`)."""
        self.record.phase = phase
        self.record.message = message
        wire = self.record.to_wire()
        if wire == self._written and not force:
            return
        try:
            await self.engine.kube.patch(
                PROCESS_INSTANCES,
                self.name,
                {"status": wire},
                namespace=self.namespace,
                subresource="status",
            )
        except ApiError as error:
            if error.not_found:  # the run was deleted: nothing left to record
                return
            raise
        self._written = wire

    async def _adopt(self) -> None:
        """A run a user created gets the labels and owner the operator's own runs have."""
        meta = self.pi["metadata"]
        labels = meta.get("labels") or {}
        if not self.obj or (labels.get(RESOURCE_LABEL) and meta.get("ownerReferences")):
            return
        type_name = self.process_name.partition(".")[0]
        try:
            await self.engine.kube.patch(
                PROCESS_INSTANCES,
                self.name,
                {
                    "metadata": {
                        "labels": {TYPE_LABEL: type_name, RESOURCE_LABEL: self.resource_name},
                        "ownerReferences": [owner_reference(self.obj)],
                    }
                },
                namespace=self.namespace,
            )
        except ApiError as error:
            if not error.not_found:
                raise


class _ExhaustedError(Exception):
    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


async def abandon(engine: Engine, pi: Mapping[str, Any]) -> None:
    """Lets go of the object a deleted run held, saying so on the object."""
    name = pi["metadata"]["name"]
    type_name = pi["spec"]["process"].partition(".")[0]
    resource = engine.catalog.resources.get(type_name)
    if resource is None:
        return
    kind = kind_of(resource)
    namespace = pi["metadata"]["namespace"] if kind.namespaced else None
    patch = [
        {"op": "test", "path": "/status/activeRun", "value": name},
        *_set("transitioning", "error"),
        *_set("transitioningMessage", f"run {name} was deleted before it ended"),
        *_set("process", None),
        *_set("activeRun", None),
    ]
    try:
        await engine.kube.patch(
            kind,
            pi["spec"]["resource"]["name"],
            patch,
            namespace=namespace,
            subresource="status",
            patch_type="json",
        )
    except ApiError as error:
        if error.status not in (404, 422):  # gone, or no longer held by this run
            logger.warning("could not release the object of deleted run %s: %s", name, error)


def _set(key: str, value: Any) -> list[dict[str, Any]]:
    # JSON patch `add` replaces an existing member; null is pruned by the API server for
    # fields that are not nullable, which clears them.
    return [{"op": "add", "path": f"/status/{_escape(key)}", "value": value}]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def run_manifest(
    *,
    name: str,
    namespace: str,
    process: str,
    obj: Mapping[str, Any],
    trigger: str,
    data: Mapping[str, Any] | None = None,
    parent: str | None = None,
) -> dict[str, Any]:
    """A ProcessInstance the operator creates: labelled and owned by its object."""
    meta = obj["metadata"]
    spec: dict[str, Any] = {
        "process": process,
        "resource": {"name": meta["name"], "uid": meta["uid"]},
        "trigger": trigger,
    }
    if data:
        spec["data"] = dict(data)
    if parent:
        spec["parent"] = parent
    return {
        "apiVersion": "kattle.dev/v1alpha1",
        "kind": "ProcessInstance",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {TYPE_LABEL: process.partition(".")[0], RESOURCE_LABEL: meta["name"]},
            "ownerReferences": [owner_reference(obj)],
        },
        "spec": spec,
    }


def state_of(obj: Mapping[str, Any], resource: ResourceDefinition) -> str | None:
    return current_state(obj.get("status") or {}, "state", resource.spec.initial_state)


def _path(*states: str | None) -> str:
    """`stopped -> starting -> running`; a create run starts from no state."""
    return " -> ".join(state for state in states if state)
