"""Lifecycle triggers on orchestrated objects: create, delete, and the finalizer between.

A new object gets its type's `create` process run (or, with none, its initial state). When
the type has `delete` processes, every object carries Kattle's finalizer, so a deletion
waits until the delete process that starts from the object's state has run. If none starts
from that state, the object stays, with a `Deletable=False` condition and a Warning Event
that say why: never held silently, never let go without its process.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Mapping
from typing import Any

from kattle.api.resourcedefinition import ResourceDefinition
from kattle.kube import finalizers
from kattle.kube.client import ApiError
from kattle.kube.finalizers import FINALIZER
from kattle.kube.kinds import PROCESS_INSTANCES, kind_of
from kattle.machine import deletion
from kattle.machine import status as writes_of
from kattle.machine.conditions import set_condition
from kattle.machine.health import spec_acknowledgement, with_health
from kattle.machine.records import goes_unrecorded, lifecycle_run_name, unrecorded_holder
from kattle.runner.engine import Engine, ObjectKey
from kattle.runner.manifests import run_manifest
from kattle.runner.scheduler import Scheduler

logger = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 0.5
# Objects acted on at once (each event is at most a few API requests). Well under the API
# client's pool (64 connections): with as many workers as connections, a burst of new
# objects kept every connection busy creating runs, and the runs' own writes waited until
# the burst was over (seen at 100,000 objects).
OBJECT_WORKERS = 16
RETRY_MAX_SECONDS = 30.0


class ObjectController:
    def __init__(self, engine: Engine, *, runs_namespace: str, scheduler: Scheduler) -> None:
        self.engine = engine
        self.runs_namespace = runs_namespace
        self.scheduler = scheduler
        # Runs this operator created, by object (forgotten with it); repeated events for the
        # same object skip the create.
        self._created: dict[ObjectKey, set[str]] = {}
        # Objects whose last event failed on an API error: they are tried again, re-read.
        self._retrying: set[tuple[str, str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Objects with an event not acted on yet: the newest one each. A fixed pool of
        # workers takes them in turn (at most one worker per object): a burst of 100,000
        # new objects is 100,000 queued keys, not 100,000 requests in flight at once.
        self._latest: dict[ObjectKey, tuple[dict[str, Any], str | None]] = {}
        self._queue: asyncio.Queue[ObjectKey] = asyncio.Queue()
        self._waiting: set[ObjectKey] = set()  # in the queue
        self._active: set[ObjectKey] = set()  # with a worker
        self._workers: list[asyncio.Task[None]] = []

    def offer(
        self, body: dict[str, Any], event_type: str | None, definition: ResourceDefinition
    ) -> None:
        """Takes an event without waiting: each object's events are acted on in order, one
        at a time, skipping to the newest when several arrived meanwhile (what is done
        depends on the object as it is, not on how it got there)."""
        key = self.key_of(body, definition)
        self._latest[key] = (body, event_type)
        if key not in self._active and key not in self._waiting:
            self._waiting.add(key)
            self._queue.put_nowait(key)
        while len(self._workers) < OBJECT_WORKERS:
            self._workers.append(asyncio.create_task(self._work()))

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._waiting.discard(key)
            self._active.add(key)
            try:
                while key in self._latest:
                    body, event_type = self._latest.pop(key)
                    try:
                        await self.on_event(body, event_type)
                    except Exception:
                        logger.exception("object %s/%s: handling its event failed", key[0], key[2])
            finally:
                self._active.discard(key)

    async def stop(self) -> None:
        tasks = [*self._workers, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def key_of(self, body: Mapping[str, Any], definition: ResourceDefinition) -> ObjectKey:
        namespace = body["metadata"].get("namespace") or self.runs_namespace
        return (namespace, definition.metadata.name or "", body["metadata"]["name"])

    def definition_of(self, body: Mapping[str, Any]) -> ResourceDefinition | None:
        group, _, _ = str(body.get("apiVersion", "")).rpartition("/")
        return self.engine.catalog.resource_of_kind(group, str(body.get("kind", "")))

    def remember(
        self, body: dict[str, Any], definition: ResourceDefinition, *, deleted: bool
    ) -> None:
        """Keeps the newest body of each object for runs to start from (runner/cache.py)."""
        kind = kind_of(definition)
        meta = body["metadata"]
        if deleted:
            self.engine.objects.drop(kind, meta["name"], meta.get("namespace"))
            self._created.pop(self.key_of(body, definition), None)
        else:
            self.engine.objects.put(kind, body)

    async def on_event(self, body: Mapping[str, Any], event_type: str | None) -> None:
        """Acts on an object's event. Kopf drops a failed event handler's event, so an API
        error (the server busy, away, throttling) is retried here, from a fresh read, until
        it goes through or the object is gone: no object is left without its create run."""
        try:
            await self._on_event(body, event_type)
        except (ApiError, OSError, TimeoutError) as error:
            definition = self.definition_of(body)
            if definition is None:
                return
            meta = body["metadata"]
            key = (definition.metadata.name or "", meta.get("namespace") or "", meta["name"])
            logger.warning("object %s/%s: %s; trying again", key[1], key[2], error)
            if key not in self._retrying:
                self._retrying.add(key)
                task = asyncio.create_task(self._retry(key, definition))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _retry(self, key: tuple[str, str, str], definition: ResourceDefinition) -> None:
        kind = kind_of(definition)
        _, namespace, name = key
        try:
            for attempt in itertools.count():
                await asyncio.sleep(min(RETRY_BASE_SECONDS * 2**attempt, RETRY_MAX_SECONDS))
                try:
                    body = await self.engine.kube.get(
                        kind, name, namespace or None, missing_ok=True
                    )
                    if body is not None:
                        await self._on_event(body, "MODIFIED")
                    return
                except (ApiError, OSError, TimeoutError) as error:
                    logger.warning("object %s/%s: %s; trying again", namespace, name, error)
        finally:
            self._retrying.discard(key)

    async def _on_event(self, body: Mapping[str, Any], event_type: str | None) -> None:
        definition = self.definition_of(body)
        if definition is None or event_type == "DELETED":
            return
        meta = body["metadata"]
        type_name = definition.metadata.name or ""
        has_delete = bool(self.engine.catalog.triggered(type_name, "delete"))
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp"):
            if FINALIZER in finalizers:
                await self._deleting(body, definition, has_delete)
            return
        if has_delete and FINALIZER not in finalizers:
            await self._patch_meta(body, definition, {"finalizers": [*finalizers, FINALIZER]})
        status = body.get("status") or {}
        if status.get("activeRun"):
            await self._resume_unrecorded(body, definition)
        acknowledged = spec_acknowledgement(status, meta.get("generation"))
        if acknowledged is not None:
            await self._patch_status(body, definition, acknowledged)
        if status.get("state") or status.get("activeRun"):
            return
        create = self.engine.catalog.create_process(type_name)
        if create is None:
            await self._set_initial_state(body, definition)
            return
        await self._start(body, definition, create.metadata.name or "", "create")

    async def _deleting(
        self, body: Mapping[str, Any], definition: ResourceDefinition, has_delete: bool
    ) -> None:
        status = body.get("status") or {}
        type_name = definition.metadata.name or ""
        catalog = self.engine.catalog
        rule = deletion.decide(
            status,
            catalog.triggered(type_name, "delete") if has_delete else [],
            catalog.delete_process(type_name, status),
            definition.spec.initial,
        )
        if rule.step is deletion.Step.GO:
            meta = body["metadata"]
            await finalizers.release(
                self.engine.kube, kind_of(definition), meta["name"], meta.get("namespace"), body
            )
        elif rule.step is deletion.Step.START:
            await self._start(body, definition, rule.process or "", "delete")
        elif rule.step is deletion.Step.HOLD:
            await self._hold(body, definition, rule.message)

    async def _hold(
        self, body: Mapping[str, Any], definition: ResourceDefinition, message: str
    ) -> None:
        """Keeps the object, saying why: a condition and a Warning Event, once each."""
        conditions = (body.get("status") or {}).get("conditions") or []
        held = next((c for c in conditions if c.get("type") == "Deletable"), None)
        if held and held.get("message") == message:
            return
        await self._patch_status(
            body,
            definition,
            {
                "conditions": set_condition(
                    conditions,
                    type="Deletable",
                    status=False,
                    reason="NoDeleteProcess",
                    message=message,
                )
            },
        )
        self.engine.events.post(
            dict(body), "DeletionHeld", message, type="Warning", action="Delete"
        )

    async def _start(
        self, body: Mapping[str, Any], definition: ResourceDefinition, process: str, trigger: str
    ) -> None:
        meta = body["metadata"]
        name = lifecycle_run_name(meta, process)
        namespace = meta.get("namespace") or self.runs_namespace
        created = self._created.setdefault(self.key_of(body, definition), set())
        if name in created:
            return
        spec = self.engine.catalog.process_spec(process)
        unrecorded = spec is not None and goes_unrecorded(spec, trigger)
        manifest = run_manifest(
            name=name,
            namespace=namespace,
            process=process,
            obj=body,
            trigger=trigger,
            seed=name if unrecorded else None,
        )
        if unrecorded:
            self.scheduler.submit_unrecorded(manifest)
        else:
            await self.engine.kube.create(PROCESS_INSTANCES, manifest, namespace, exists_ok=True)
        created.add(name)

    async def _resume_unrecorded(
        self, body: Mapping[str, Any], definition: ResourceDefinition
    ) -> None:
        """A run without a record that holds the object and that this operator did not
        start (it restarted, or took over from another): started again by its name, unless
        it recorded itself meanwhile (then the record's watch event drives it)."""
        meta, status = body["metadata"], body.get("status") or {}
        name = unrecorded_holder(meta, status, self.engine.catalog.process_spec)
        created = self._created.setdefault(self.key_of(body, definition), set())
        if name is None or name in created:
            return
        namespace = meta.get("namespace") or self.runs_namespace
        # Noted only once the read went through: on an API error the event is tried again.
        found = await self.engine.kube.get(PROCESS_INSTANCES, name, namespace, missing_ok=True)
        created.add(name)
        if found is not None:
            return
        process = status["process"]
        spec = self.engine.catalog.process_spec(process)
        trigger = spec.trigger if spec is not None else "create"
        logger.info(
            "object %s/%s: resuming %s, a run without a record", namespace, meta["name"], name
        )
        manifest = run_manifest(
            name=name, namespace=namespace, process=process, obj=body, trigger=trigger, seed=name
        )
        self.scheduler.submit_unrecorded(manifest)

    async def _set_initial_state(
        self, body: Mapping[str, Any], definition: ResourceDefinition
    ) -> None:
        spec = definition.spec
        writes = writes_of.initial(state=spec.initial_state, further=spec.initial_states)
        await self._patch_status(body, definition, with_health(writes, body, "state"))

    async def _patch_meta(
        self, body: Mapping[str, Any], definition: ResourceDefinition, meta: dict[str, Any]
    ) -> None:
        """A compare-and-set: a conflict means a newer event is on its way; it will redo this."""
        await self._patch(
            body,
            definition,
            {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"], **meta}},
            "",
        )

    async def _patch_status(
        self, body: Mapping[str, Any], definition: ResourceDefinition, status: dict[str, Any]
    ) -> None:
        await self._patch(
            body,
            definition,
            {
                "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
                "status": status,
            },
            "status",
        )

    async def _patch(
        self,
        body: Mapping[str, Any],
        definition: ResourceDefinition,
        patch: dict[str, Any],
        subresource: str,
    ) -> None:
        meta = body["metadata"]
        await self.engine.kube.patch(
            kind_of(definition),
            meta["name"],
            patch,
            namespace=meta.get("namespace"),
            subresource=subresource,
            missing_ok=True,
            conflict_ok=True,
        )
