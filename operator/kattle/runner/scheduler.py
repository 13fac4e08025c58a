"""Drives runs: one worker per object, one run at a time per object, oldest first.

Watch events tell the scheduler which runs exist (`submit`) and which objects changed
(`wake`). Each object with unfinished runs gets a worker task that drives them in order of
creation, preferring the run that holds the object (a chained run created after others were
queued must go first, or they would wait on it forever). The in-memory order is only a
courtesy: the compare-and-set on the object is what makes one run at a time true, also
across operators.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from kattle.api.processinstance import FINAL_PHASES
from kattle.kube.client import ApiError
from kattle.kube.kinds import PROCESS_INSTANCES
from kattle.machine import replay
from kattle.runner import replays
from kattle.runner.cache import packed, unpacked
from kattle.runner.endings import abandon
from kattle.runner.engine import Engine, ObjectKey
from kattle.runner.run import Outcome, ProcessRun

logger = logging.getLogger(__name__)

# A waiting run looks again this often even without a wake-up: a holder may end in another
# operator, or in a way no event reports.
RECHECK_SECONDS = 5.0
ERROR_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)


def object_key_of_run(pi: Mapping[str, Any]) -> ObjectKey:
    spec = pi["spec"]
    return (
        pi["metadata"]["namespace"],
        spec["process"].partition(".")[0],
        spec["resource"]["name"],
    )


@dataclass
class _Queue:
    # name -> (creationTimestamp, when this operator first saw it): creation times are to
    # the second, and watch events arrive in the order runs were created.
    runs: dict[str, tuple[str, int]] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None
    current: str | None = None  # the run being driven now
    drive: asyncio.Task[Any] | None = None  # and its task
    # Queued runs with no status yet -> the resourceVersion they were seen at.
    unmarked: dict[str, str] = field(default_factory=dict)
    # The newest watch body of each run not driven yet: its first drive starts from it
    # rather than reading it again. Later drives (after waiting) read afresh.
    fresh: dict[str, bytes] = field(default_factory=dict)  # packed (runner/cache.py)
    driven: set[str] = field(default_factory=set)
    # Runs without a record (create runs; `record: OnFailure`): their newest body, packed,
    # in memory only, until they end or record themselves. A burst of creates queues one
    # per object, hence packed.
    unrecorded: dict[str, bytes] = field(default_factory=dict)
    priority: dict[str, int] = field(default_factory=dict)  # of each run's process


class Scheduler:
    def __init__(
        self, engine: Engine, *, on_run_ended: Callable[[ObjectKey], None] | None = None
    ) -> None:
        self.engine = engine
        self._queues: dict[ObjectKey, _Queue] = {}
        self._on_run_ended = on_run_ended
        self._tasks: set[asyncio.Task[None]] = set()
        self.history = engine.ended.history
        engine.metrics.watch_scheduler(lambda: engine.slots.active, lambda: self.queued)
        self._pruning: set[str] = set()
        self._replaying: set[tuple[str, str, str]] = set()
        self._seen = itertools.count()

    def submit(self, pi: dict[str, Any]) -> None:
        """A run exists or changed; unfinished runs are queued for their object."""
        key = object_key_of_run(pi)
        name = pi["metadata"]["name"]
        self.engine.watch.saw(pi)
        if (pi.get("status") or {}).get("phase") in FINAL_PHASES:
            self.forget(pi)
            self._record_ended(key, pi)
            self.engine.ended.reported(key, name)
            self._answer_replay(pi)
            return
        queue = self._queues.setdefault(key, _Queue())
        if name not in queue.driven:
            queue.fresh[name] = packed(pi)
        unmarked = name not in queue.runs and name not in queue.unrecorded
        if unmarked and not (pi.get("status") or {}).get("phase"):
            version = pi["metadata"].get("resourceVersion", "")
            if queue.current and queue.current != name:
                self._background(self._mark_pending(key[0], name, version, queue.current))
            else:
                queue.unmarked[name] = version
        if name not in queue.runs:
            queue.runs[name] = (pi["metadata"].get("creationTimestamp", ""), next(self._seen))
            spec = self.engine.catalog.process_spec(pi["spec"]["process"])
            queue.priority[name] = spec.priority if spec is not None else 0
        queue.wake.set()
        if queue.worker is None or queue.worker.done():
            queue.worker = asyncio.create_task(self._work(key), name=f"runs:{'/'.join(key)}")

    def _answer_replay(self, pi: dict[str, Any]) -> None:
        """A replay asked of an ended run: answered once per request, even when the watch
        brings the run again before the answer is written."""
        requested = replay.wanted(pi)
        asked = (pi["metadata"]["namespace"], pi["metadata"]["name"], requested or "")
        if requested is None or asked in self._replaying:
            return
        self._replaying.add(asked)

        async def answer() -> None:
            try:
                await replays.answer(self.engine, pi)
            except Exception:
                # Asked again on the run's next event (or the operator's next start).
                logger.exception("could not answer the replay asked of %s", asked[1])
            finally:
                self._replaying.discard(asked)

        self._background(answer())

    def submit_unrecorded(self, manifest: dict[str, Any]) -> None:
        """A run that begins without a record: driven from this body."""
        key = object_key_of_run(manifest)
        queue = self._queues.setdefault(key, _Queue())
        name = manifest["metadata"]["name"]
        queue.unrecorded[name] = packed(manifest)
        self.submit(manifest)
        queue.fresh.pop(name, None)  # the same body: kept once, in `unrecorded`

    def forget(self, pi: Mapping[str, Any], *, deleted: bool = False) -> None:
        """A run ended or was deleted: it needs no worker. A deleted run stops at once."""
        key = object_key_of_run(pi)
        name = pi["metadata"]["name"]
        if deleted:
            self.engine.watch.saw(pi, deleted=True)
            self.history.forget(key, name)
            self.engine.ended.reported(key, name)
        queue = self._queues.get(key)
        if queue is None:
            return
        queue.runs.pop(name, None)
        queue.priority.pop(name, None)
        queue.fresh.pop(name, None)
        queue.driven.discard(name)
        queue.wake.set()
        if deleted and queue.current == name and queue.drive is not None:
            queue.drive.cancel()
            self._background(abandon(self.engine, pi))

    def wake(self, key: ObjectKey) -> None:
        """The object changed: waiting runs look again."""
        queue = self._queues.get(key)
        if queue is not None:
            queue.wake.set()

    @property
    def queued(self) -> int:
        return sum(len(q.runs) for q in self._queues.values())

    async def stop(self) -> None:
        workers = [q.worker for q in self._queues.values() if q.worker is not None]
        # Pending marks and prunes too: none may outlive the API client they use.
        tasks = [*workers, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self, key: ObjectKey) -> None:
        queue = self._queues[key]
        preferred: str | None = None
        errors = 0
        try:
            while queue.runs:
                order = sorted(queue.runs, key=lambda n: queue.runs[n])
                name = preferred if preferred in queue.runs else order[0]
                queue.wake.clear()
                queue.current = name
                self._mark_queued(key[0], queue, name)
                try:
                    async with self.engine.slots.held(queue.priority.get(name, 0)):
                        packed_body = queue.fresh.pop(name, None)
                        fresh = None if packed_body is None else unpacked(packed_body)
                        queue.driven.add(name)
                        queue.drive = asyncio.create_task(self._drive(key, name, fresh))
                        try:
                            result = await queue.drive
                        except asyncio.CancelledError:
                            task = asyncio.current_task()
                            if task is not None and task.cancelling():
                                raise  # the scheduler is stopping
                            result = None  # the run was deleted while it ran
                        finally:
                            queue.drive = None
                    errors = 0
                except Exception as error:
                    # The API server is away or refused something unexpected, or a bug: keep
                    # the run and try again; nothing is lost, the next try reads afresh.
                    delay = ERROR_BACKOFF_SECONDS[min(errors, len(ERROR_BACKOFF_SECONDS) - 1)]
                    errors += 1
                    expected = isinstance(error, ApiError | OSError | TimeoutError)
                    logger.warning(
                        "run %s/%s: %s; trying again in %.1fs",
                        key[0],
                        name,
                        error,
                        delay,
                        exc_info=not expected,
                    )
                    await asyncio.sleep(delay)
                    continue
                if result is None or result.outcome is Outcome.ENDED:
                    queue.runs.pop(name, None)
                    queue.unrecorded.pop(name, None)
                    queue.priority.pop(name, None)
                    self.engine.ended.ended_here(key, name)
                    preferred = None
                    if self._on_run_ended is not None:
                        self._on_run_ended(key)
                    continue
                preferred = result.holder if result.holder in queue.runs else None
                if preferred is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(queue.wake.wait(), RECHECK_SECONDS)
        finally:
            queue.current = None
            if not queue.runs and self._queues.get(key) is queue:
                del self._queues[key]

    def _background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _mark_queued(self, namespace: str, queue: _Queue, current: str) -> None:
        """Runs queued with no status yet say they wait for the one driven now."""
        for other, version in sorted(queue.unmarked.items()):
            if other != current:
                self._background(self._mark_pending(namespace, other, version, current))
        queue.unmarked.clear()

    async def _mark_pending(self, namespace: str, name: str, version: str, holder: str) -> None:
        """A run queued behind another says so at once, rather than showing nothing.

        A compare-and-set on the version the run was seen at: this write runs in the
        background, and on a loaded server it can land after the run itself was driven and
        ended; a plain patch would then turn its final record back into Pending, and the
        run would be driven a second time."""
        status = {"phase": "Pending", "message": f"waiting for {holder} to end"}
        try:
            await self.engine.kube.patch(
                PROCESS_INSTANCES,
                name,
                {"metadata": {"resourceVersion": version}, "status": status},
                namespace=namespace,
                conflict_ok=True,
                missing_ok=True,
            )
        except (ApiError, OSError) as error:
            logger.warning("could not mark %s pending: %s", name, error)

    async def _drive(self, key: ObjectKey, name: str, fresh: dict[str, Any] | None) -> Any:
        queue = self._queues[key]
        kept = queue.unrecorded.get(name)
        pi = (
            fresh
            or (None if kept is None else unpacked(kept))
            or await self.engine.kube.get(PROCESS_INSTANCES, name, key[0], missing_ok=True)
        )
        if pi is None:
            return None
        run = ProcessRun(self.engine, pi)
        try:
            return await run.drive()
        finally:
            if run.recorded:
                queue.unrecorded.pop(name, None)  # its watch events drive it from now on
            elif name in queue.unrecorded:
                queue.unrecorded[name] = packed(run.pi)

    # -- history --------------------------------------------------------------------------

    def _record_ended(self, key: ObjectKey, pi: dict[str, Any]) -> None:
        """Ended runs beyond the type's history limit are deleted, oldest first. The watch
        tells which runs each object has, so no list request is needed."""
        self.history.ended(key, pi)
        resource = self.engine.catalog.resources.get(key[1])
        if resource is None:
            return
        for name in self.history.beyond(key, resource.spec.history_limit):
            if name not in self._pruning:
                self._pruning.add(name)
                self._background(self._prune(key, name))

    async def _prune(self, key: ObjectKey, name: str) -> None:
        try:
            await self.engine.kube.delete(PROCESS_INSTANCES, name, key[0])
            self.history.forget(key, name)
        except (ApiError, OSError) as error:
            logger.warning("could not prune run %s/%s: %s", key[0], name, error)
        finally:
            self._pruning.discard(name)
