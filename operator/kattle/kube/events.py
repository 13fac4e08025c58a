"""Posts Kubernetes Events on objects: every run's end, every failure.

Events are for people watching `kubectl describe` or `kubectl events`; the durable record
is the ProcessInstance. Posting one never fails a run: errors are logged. A run's own Event
(its end) is posted before its record is final, under a name of its own (`post_once`), so
a resumed run posts it again without a duplicate; the others wait in a bounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from kattle.kube.client import EVENTS, ApiError, KubeClient

logger = logging.getLogger(__name__)
CONTROLLER = "kattle.dev/operator"
MAX_NOTE = 1024
POSTERS = 8
MAX_QUEUED = 10_000


# The API server accepts Events on cluster-scoped objects in this namespace only.
CLUSTER_SCOPED_EVENTS_NAMESPACE = "default"


class EventRecorder:
    def __init__(
        self,
        kube: KubeClient,
        *,
        normal: bool = True,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.kube = kube
        # Normal Events cost a write each (one per run); large installations may keep to
        # warnings, which are always posted.
        self.normal = normal
        # POD_ID is what the Helm chart sets (Kopf's peering reads it too).
        self.instance = os.environ.get("POD_ID") or socket.gethostname()
        # Events wait in a bounded queue for a few posters: a burst of thousands of runs
        # must not take every API connection, nor hold memory without limit. When the
        # queue is full, Events are dropped (counted in `dropped`): they are a courtesy,
        # the ProcessInstance is the record.
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=MAX_QUEUED)
        self._posters: list[asyncio.Task[None]] = []
        self.dropped = 0
        self._on_drop = on_drop

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def post(
        self,
        obj: dict[str, Any],
        reason: str,
        note: str,
        *,
        type: Literal["Normal", "Warning"] = "Normal",
        action: str = "Process",
        requested: bool = False,
    ) -> None:
        """Posts in the background; the caller goes on at once. Normal Events are skipped
        when only warnings are wanted, unless a handler `requested` them."""
        if type == "Normal" and not self.normal and not requested:
            return
        if not self._posters:
            self._posters = [asyncio.create_task(self._poster()) for _ in range(POSTERS)]
        try:
            self._queue.put_nowait(self._event(obj, reason, note, type, action))
        except asyncio.QueueFull:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning(
                    "%d Events dropped: more are waiting than %d", self.dropped, MAX_QUEUED
                )

    async def post_once(
        self,
        obj: dict[str, Any],
        reason: str,
        note: str,
        *,
        name: str,
        type: Literal["Normal", "Warning"] = "Normal",
    ) -> None:
        """Posts now, under a name of its own: posting the same Event again (a run resumed
        after a kill) leaves the first. Failures are logged, never raised."""
        if type == "Normal" and not self.normal:
            return
        body = self._event(obj, reason, note, type, "Process")
        body["metadata"] = {"name": name, "namespace": body["metadata"]["namespace"]}
        await self._create(body, exists_ok=True)

    async def _create(self, body: dict[str, Any], *, exists_ok: bool = False) -> None:
        try:
            await self.kube.create(EVENTS, body, body["metadata"]["namespace"], exists_ok=exists_ok)
        except (TimeoutError, ApiError, OSError) as error:
            logger.warning(
                "could not post event %s on %s: %s",
                body["reason"],
                body["regarding"].get("name"),
                error,
            )

    async def _poster(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                await self._create(body)
            finally:
                self._queue.task_done()

    def _event(
        self, obj: dict[str, Any], reason: str, note: str, type: str, action: str
    ) -> dict[str, Any]:
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or CLUSTER_SCOPED_EVENTS_NAMESPACE
        return {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'object')}-", "namespace": namespace},
            "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": CONTROLLER,
            "reportingInstance": self.instance,
            "action": action,
            "reason": reason,
            "note": note[:MAX_NOTE],
            "type": type,
            "regarding": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
        }

    async def flush(self, within: float = 5.0) -> None:
        """Posts what is queued (for at most `within` seconds), then stops the posters."""
        if self._posters:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), within)
        for poster in self._posters:
            poster.cancel()
        await asyncio.gather(*self._posters, return_exceptions=True)
        self._posters = []
