"""Runs one process on one object: a thin driver that gathers, asks `machine/`, and writes.

Cattle's semantics on Kubernetes' mechanisms:

- The lock is the object's `status.activeRun`. A run takes it with a compare-and-set PATCH
  (the object's resourceVersion is in the patch) that also sets the transitioning state, so
  admission and transition are one write and two runs can never both win.
- While a run holds the object, its writes carry a JSON-patch `test` of `activeRun`: a run
  that lost the object (a user cleared it, another operator took over) cannot write over it.
- The ProcessInstance is written when the run waits, fails, retries and ends (and shows
  `Running` once a handler call lasts), not after each successful handler call: on a restart
  every handler is called again with the same idempotency key, which handlers must honour
  anyway (a reply can be lost on the wire too).
- Every write the run needs to resume is on the API server, so an operator killed at any
  point resumes the run from what it finds there.

Decisions live in `machine/` (admission, a call's outcome, what an end writes); the handler
calls in `runner/calls.py`; the endings in `runner/endings.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kattle.api.common import Condition
from kattle.api.processdefinition import ProcessDefinition
from kattle.api.processinstance import (
    FINAL_PHASES,
    HISTORY_MAX,
    HandlerCall,
    ProcessInstanceStatus,
    RunPhase,
    Transition,
)
from kattle.kube.client import ApiError
from kattle.kube.kinds import PROCESS_INSTANCES, kind_of
from kattle.machine import status as writes_of
from kattle.machine.admission import (
    Decision,
    Fact,
    Facts,
    Verdict,
    decide,
    holder_of,
    previous_of,
)
from kattle.machine.conditions import run_succeeded
from kattle.machine.health import with_health
from kattle.machine.merge import merge
from kattle.machine.names import owner_reference, owner_reference_to
from kattle.machine.records import adoption, keeps_success, lost_record, unrecorded_holder
from kattle.observability import tracing
from kattle.runner import endings
from kattle.runner.calls import has_no_logic, run_handlers
from kattle.runner.driving import (
    LostObjectError,
    Outcome,
    RefusedWriteError,
    Result,
    Target,
    now,
)
from kattle.runner.engine import Engine, ObjectKey
from kattle.runner.history import run_labels
from kattle.runner.manifests import RUN_SEED_ANNOTATION, run_manifest

__all__ = ["Engine", "ObjectKey", "Outcome", "ProcessRun", "Result", "run_manifest"]

logger = logging.getLogger(__name__)

# A run naming a process the operator has not heard of yet waits this long for its
# definition: a ProcessDefinition and a ProcessInstance applied together race.
DEFINITION_GRACE_SECONDS = 5.0
# What a run without a record keeps to itself: it records itself on any other phase, and
# on success too where its process keeps every run (machine/records.py).
UNRECORDED_PHASES = frozenset({"Pending", "Running", "Succeeded"})


class ProcessRun:
    """One ProcessInstance being driven. `drive` returns when it ended or must wait."""

    def __init__(self, engine: Engine, pi: dict[str, Any]) -> None:
        self.engine = engine
        self.pi = pi
        meta, spec = pi["metadata"], pi["spec"]
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        # A run started without a record (`record: OnFailure`) has no uid: its seed stands
        # in for it, also once the run records itself.
        self.recorded = bool(meta.get("uid"))
        self.uid: str = (meta.get("annotations") or {}).get(RUN_SEED_ANNOTATION) or meta["uid"]
        self.process_name: str = spec["process"]
        self.type_name = self.process_name.partition(".")[0]
        self.resource_name: str = spec["resource"]["name"]
        self.resource_uid: str | None = spec["resource"].get("uid")
        self.trigger: str = spec.get("trigger", "manual")
        self.parent: str | None = spec.get("parent")
        self.chain: str | None = spec.get("chain")  # what runs once this one succeeds
        self.input: dict[str, Any] = spec.get("data") or {}
        self.ancestry: list[dict[str, str]] = spec.get("ancestry") or []
        self.record = ProcessInstanceStatus.model_validate(pi.get("status") or {})
        self._written = self.record.to_wire()
        self.obj: dict[str, Any] = {}
        self._trust_cache = True
        self.from_state: str | None = None  # once the run has the object
        # The process the run was handed to last (delegate), if any: its steps' idempotency
        # keys and related runs' names derive from `seed`, so they never meet the first's.
        self.segment: str | None = None
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

    @property
    def priority(self) -> int:
        spec = self.engine.catalog.process_spec(self.process_name)
        return spec.priority if spec is not None else 0

    @property
    def seed(self) -> str:
        return f"{self.uid}>{self.segment}" if self.segment else self.uid

    @property
    def key(self) -> ObjectKey:
        return (self.namespace, self.type_name, self.resource_name)

    # -- the flow -------------------------------------------------------------------------

    async def drive(self) -> Result:
        attributes = {
            "kattle.run": f"{self.namespace}/{self.name}",
            "kattle.process": self.process_name,
            "kattle.object": self.resource_name,
            "kattle.trigger": self.trigger,
        }
        with tracing.span(f"run {self.process_name}", attributes) as current:
            result = await self._drive()
            ended = {"kattle.outcome": result.outcome.value}
            if self.record.exit_reason:
                ended["kattle.exit_reason"] = self.record.exit_reason
            tracing.set_attributes(current, ended)
            return result

    async def _drive(self) -> Result:
        if self.record.phase in FINAL_PHASES:
            return Result(Outcome.ENDED)
        target = await self._target()
        if isinstance(target, str):
            return await endings.end_run(self, "Failed", "Invalid", target)
        while True:
            result = await self._step(target)
            if result is not None:
                return result

    async def _target(self) -> Target | str:
        """The run's definitions, or why it cannot run."""
        definition = await self._process_definition()
        if definition is None:
            return f"no ProcessDefinition named {self.process_name}"
        resource = self.engine.catalog.resources.get(definition.spec.resource_type)
        problems = self.engine.catalog.process_problems(self.process_name)
        if self.chain is not None and self.chain not in self.engine.catalog.processes:
            problems = [*problems, f"the chain it names, {self.chain}, has no ProcessDefinition"]
        if resource is None or problems:
            return f"{self.process_name} cannot run: {'; '.join(problems)}"
        kind = kind_of(resource)
        return Target(definition, resource, kind, self.namespace if kind.namespaced else None)

    async def _step(self, target: Target) -> Result | None:
        """One pass; None means a compare-and-set lost a race: read again and retry."""
        decision, target = await self._admission(target)
        verdict = decision.verdict
        if verdict is Verdict.GONE:
            kind = target.resource.spec.names.kind
            message = f"{kind} {self.resource_name} does not exist"
            return await endings.end_run(self, "Canceled", "ResourceGone", message)
        status = self.obj.get("status") or {}
        if verdict is Verdict.FINISHED:
            return await endings.finish_from_summary(self, target, status["lastRun"])
        if verdict is Verdict.WAIT:
            await self.write_record(phase="Pending", message=decision.reason)
            return Result(Outcome.WAITING, decision.waits_for)
        if verdict is Verdict.CANCEL:
            return await endings.cancel(self, target, decision)
        if verdict is Verdict.ALREADY_DONE:
            return await endings.already_done(self, target, decision)
        if verdict is Verdict.CYCLE:
            return await endings.cycle(self, target, decision)
        if verdict is Verdict.LOST:
            return await endings.end_run(self, "Canceled", "Canceled", decision.reason)
        # A start state (admitted) or a transitioning state (resumed) tells the way through.
        target = target.along(decision.state)
        if verdict is Verdict.ADMIT:
            if await has_no_logic(self, target):
                return await endings.straight_through(self, target, decision.state or "")
            if not await self._take(target, decision.state or ""):
                return None
        else:
            self._resume(target, status.get("previousState") or "")
        if self.record.start_time is None:
            self.record.start_time = now()
        self.record.attempts = max(self.record.attempts, 1)
        try:
            return await run_handlers(self, target)
        except LostObjectError as error:
            return await endings.end_run(self, "Canceled", "Canceled", str(error))
        except RefusedWriteError as error:
            return await endings.refused(self, target, str(error))

    # -- admission ------------------------------------------------------------------------

    async def _admission(self, target: Target) -> tuple[Decision, Target]:
        """Asks `machine.admission` about the object, reading what it needs, and says which
        process the run is in (its own, or one it was handed to). The cached body is
        trusted for an admission only (the compare-and-set checks it); any other verdict
        is confirmed with a fresh read first."""
        cached = self.engine.objects.get(target.kind, self.resource_name, target.namespace)
        sources = (cached, None) if cached is not None and self._trust_cache else (None,)
        self._trust_cache = False  # a retry after a lost race reads afresh
        for obj in sources:
            if obj is None:
                obj = await self.engine.kube.get(
                    target.kind, self.resource_name, target.namespace, missing_ok=True
                )
                if obj is not None:
                    self.engine.objects.put(target.kind, obj)
            if obj is not None and self.resource_uid not in (None, obj["metadata"]["uid"]):
                obj = None  # another object of the same name
            self.obj = obj or {}
            current = self._delegated(target, obj)
            decision = await self._decide(current, obj)
            if decision.verdict is Verdict.ADMIT:
                break
        return decision, current

    def _delegated(self, target: Target, obj: Mapping[str, Any] | None) -> Target:
        """The target of the process this run was handed to, when the object shows the
        run went on in it (the operator restarted after a delegation); else `target`."""
        status = (obj or {}).get("status") or {}
        process = status.get("process")
        if holder_of(status) != self.name or process not in self.record.delegated_to:
            return target
        definition = self.engine.catalog.processes.get(process)
        if definition is None:
            return target
        self.segment = process
        return Target(definition, target.resource, target.kind, target.namespace)

    async def _decide(self, target: Target, obj: Mapping[str, Any] | None) -> Decision:
        status = None if obj is None else (obj.get("status") or {})
        facts = Facts(
            run=self.name,
            process=target.process,
            spec=target.spec,
            initial=target.resource.spec.initial(target.spec.state_field),
            status=status,
            took_before=self._took_before(target),
            # Only a run handed the object (chain, onError) waits for its parent's record:
            # a related run's parent waits for it.
            parent=self.parent if self.trigger in ("chain", "onError") else None,
            ancestors=tuple(a["run"] for a in self.ancestry),
            replay_of=self.parent if self.trigger == "replay" else None,
        )
        while (decision := decide(facts)).verdict is Verdict.NEED:
            assert decision.need is not None
            assert status is not None
            facts = facts.knowing(decision.need, await self._fact(decision.need, status))
        return decision

    async def _fact(self, fact: Fact, status: Mapping[str, Any]) -> bool:
        if fact is Fact.HOLDER_RUNNING:
            # A holder without a record is alive: after a restart its object starts it
            # again (machine/records.py), so no other run may take the object meanwhile.
            meta = self.obj.get("metadata") or {}
            unrecorded = unrecorded_holder(meta, status, self.engine.catalog.process_spec)
            return await self._run_alive(holder_of(status) or "", missing=unrecorded is not None)
        if fact is Fact.PREVIOUS_RUNNING:
            return await self._previous_running(status)
        name = self.parent or ""
        return not self.engine.ended.known(self.key, name) and await self._run_alive(name)

    async def _previous_running(self, status: Mapping[str, Any]) -> bool:
        """Whether the run the object's `lastRun` names has not ended in its record; a
        record lost to a restart is written from that summary first."""
        name = previous_of(status, self.name) or ""
        if self.engine.ended.known(self.key, name):
            return False
        if await self._run_alive(name):
            return True
        meta = self.obj.get("metadata") or {}
        last = lost_record(meta, status, self.engine.catalog.process_spec)
        if last is not None:
            await self._write_lost_record(last)
        return False

    async def _write_lost_record(self, last: Mapping[str, Any]) -> None:
        """Writes the record of the run `last` summarizes, as that run would have (its
        Event too, once: it has a name of its own)."""
        name = str(last["name"])
        manifest = run_manifest(
            name=name,
            namespace=self.namespace,
            process=str(last["process"]),
            obj=self.obj,
            trigger="create",
            seed=name,
        )
        lost = ProcessRun(self.engine, manifest)
        lost.obj = self.obj
        target = await lost._target()
        if isinstance(target, Target):
            self.log.info("%s: writing its record, lost to a restart, from lastRun", name)
            await endings.finish_from_summary(lost, target, last)

    async def _run_alive(self, name: str, *, missing: bool = False) -> bool:
        """Whether the run has not ended; `missing` is the answer when it has no record."""
        other = await self.engine.kube.get(PROCESS_INSTANCES, name, self.namespace, missing_ok=True)
        if other is None:
            return missing
        return (other.get("status") or {}).get("phase") not in FINAL_PHASES

    def _took_before(self, target: Target) -> bool:
        states = target.spec.transitionings()
        return any(t.to in states for t in self.record.transitions)

    async def _take(self, target: Target, from_state: str) -> bool:
        """The compare-and-set that admits the run and writes its transition; False when
        another write came first."""
        spec = target.spec
        writes = writes_of.take(
            run=self.name,
            process=self.process_name,
            state_field=spec.state_field,
            transitioning=target.transitioning,
            from_state=from_state,
        )
        writes = with_health(writes, self.obj, spec.state_field)
        patch = {"metadata": {"resourceVersion": self.obj["metadata"]["resourceVersion"]}}
        taken = await self.engine.kube.patch(
            target.kind,
            self.resource_name,
            {**patch, "status": writes},
            namespace=target.namespace,
            subresource="status",
            conflict_ok=True,
        )
        if taken is None:
            return False
        self._hold(target, taken)
        self.engine.metrics.runs_started.labels(self.process_name).inc()
        self.log.info(
            "%s started on %s: %s -> %s",
            self.name,
            self.resource_name,
            from_state,
            target.transitioning,
        )
        # No Event here: the run's one Normal Event is posted when it ends (an Event is
        # a write; the object's status already shows the run while it lasts).
        self.transition(spec.state_field, from_state, target.transitioning)
        self.from_state = from_state
        return True

    def _resume(self, target: Target, from_state: str) -> None:
        if not self._took_before(target):
            # The operator stopped between the transition and its first record.
            self.transition(target.spec.state_field, from_state, target.transitioning)
        self.from_state = from_state

    def _hold(self, target: Target, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.engine.objects.put(target.kind, obj)

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

    # -- writes ---------------------------------------------------------------------------

    async def write_held(self, target: Target, writes: Mapping[str, Any]) -> None:
        """A status write that only lands while this run holds the object. A refusal is
        read from what the API server holds, never from its message: the object named
        another run (or none), or the write itself was refused."""
        writes = writes_of.without_stale_progress(writes, self.obj.get("status") or {})
        writes = with_health(writes, self.obj, target.spec.state_field)
        try:
            obj = await self.engine.kube.patch(
                target.kind,
                self.resource_name,
                writes_of.held_patch(self.name, writes),
                namespace=target.namespace,
                subresource="status",
                patch_type="json",
            )
        except ApiError as error:
            if error.status != 422:
                raise
            current = await self.engine.kube.get(
                target.kind, self.resource_name, target.namespace, missing_ok=True
            )
            holder = ((current or {}).get("status") or {}).get("activeRun")
            if holder != self.name:
                raise LostObjectError(
                    f"the object is no longer held by this run (activeRun is {holder or 'empty'})"
                ) from None
            self._hold(target, current)
            raise RefusedWriteError(
                f"the API server refused the run's write to the object: {error.message}"
            ) from None
        self._hold(target, obj)

    async def write_record(
        self, *, phase: RunPhase, message: str, force: bool = False, durable: bool = False
    ) -> None:
        """Writes the run's status if it changed (or always, with `force`); `durable`:
        even a run without a record writes one, as a restart needs it."""
        self.record.phase = phase
        self.record.message = message
        known = [c.to_wire() for c in self.record.conditions]
        self.record.conditions = [
            Condition.model_validate(c)
            for c in run_succeeded(known, phase, self.record.exit_reason, message)
        ]
        wire = self.record.to_wire()
        if wire == self._written and not force:
            return
        if not self.recorded:
            if phase in UNRECORDED_PHASES and not durable and not self._kept(phase):
                # Kept in memory only: the scheduler drives the run again from it.
                self.pi["status"] = wire
                self._written = wire
                return
            if await self._create_record(phase, wire):
                self._written = wire
                return
        adopted = self._adoption(phase)
        # A deleted run has nothing left to record.
        await self.engine.kube.patch(
            PROCESS_INSTANCES,
            self.name,
            {"metadata": adopted, "status": wire} if adopted else {"status": wire},
            namespace=self.namespace,
            missing_ok=True,
        )
        if adopted:
            self.pi["metadata"] = merge(self.pi.get("metadata") or {}, adopted)
        self._written = wire

    def _adoption(self, phase: str) -> dict[str, Any]:
        """The metadata the record's last write adds (`machine.records.adoption`): its
        labels where a user left them out, its object as owner."""
        if phase not in FINAL_PHASES:
            return {}
        labels = run_labels(self.type_name, self.resource_name)
        return adoption(self.pi.get("metadata") or {}, labels, self._owner())

    def _owner(self) -> dict[str, Any] | None:
        """The run's object as an owner, also when it is gone (known by its uid then)."""
        if self.obj:
            return owner_reference(self.obj)
        resource = self.engine.catalog.resources.get(self.type_name)
        if resource is None or not self.resource_uid:
            return None
        api_version, kind = kind_of(resource).api_version, resource.spec.names.kind
        return owner_reference_to(api_version, kind, self.resource_name, self.resource_uid)

    def _kept(self, phase: str) -> bool:
        """Whether a run without a record writes one as it succeeds."""
        spec = self.engine.catalog.process_spec(self.process_name)
        return phase == "Succeeded" and keeps_success(spec)

    async def _create_record(self, phase: str, wire: dict[str, Any]) -> bool:
        """A run started without a record gets one when it first needs it, created with
        its status in one write (a ProcessInstance has no status subresource); False when
        a record of that name was there already, so the status is still to be written. A
        restart before this starts the run again, by name, from its object."""
        meta = merge(self.pi.get("metadata") or {}, self._adoption(phase))
        body = {**{k: v for k, v in self.pi.items() if k != "status"}, "metadata": meta}
        body["status"] = wire
        created = await self.engine.kube.create(
            PROCESS_INSTANCES, body, self.namespace, exists_ok=True
        )
        self.recorded = True
        self.log.info("%s is recorded from now on: it is %s", self.name, phase)
        if created is None:
            return False
        self.pi = created
        return True

    @property
    def recorded_phase(self) -> str | None:
        return self._written.get("phase")

    def transition(self, field: str, before: str, after: str, at: datetime | None = None) -> None:
        self.engine.metrics.transitions.labels(self.type_name, after).inc()
        self.record.transitions.append(
            Transition.model_validate(
                {"field": field, "from": before, "to": after, "time": at or now()}
            )
        )

    def add_call(self, call: HandlerCall) -> None:
        self.record.handler_calls.append(call)
        del self.record.handler_calls[:-HISTORY_MAX]

    def handler_writes(self, writes: Mapping[str, Any]) -> dict[str, Any]:
        return writes_of.handler_writes(self.obj.get("status") or {}, writes)

    def data(self) -> dict[str, Any]:
        return merge({}, self.input)
