"""Posts Kubernetes Events on objects: every transition, every failure.

Events are for people watching `kubectl describe` or `kubectl events`; the durable record
is the ProcessInstance. Posting one never blocks or fails a run: errors are logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any, Literal

from kattle.kube.client import EVENTS, ApiError, KubeClient

logger = logging.getLogger(__name__)
CONTROLLER = "kattle.dev/operator"
MAX_NOTE = 1024


# The API server accepts Events on cluster-scoped objects in this namespace only.
CLUSTER_SCOPED_EVENTS_NAMESPACE = "default"


class EventRecorder:
    def __init__(self, kube: KubeClient, *, normal: bool = True) -> None:
        self.kube = kube
        # Normal Events cost a write each (two per run); large installations may keep to
        # warnings, which are always posted.
        self.normal = normal
        # POD_ID is what the Helm chart sets (Kopf's peering reads it too).
        self.instance = os.environ.get("POD_ID") or socket.gethostname()
        self._tasks: set[asyncio.Task[None]] = set()

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
        task = asyncio.create_task(self._post(obj, reason, note, type, action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(
        self, obj: dict[str, Any], reason: str, note: str, type: str, action: str
    ) -> None:
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or CLUSTER_SCOPED_EVENTS_NAMESPACE
        body = {
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
        try:
            await self.kube.create(EVENTS, body, namespace)
        except (TimeoutError, ApiError, OSError) as error:
            logger.warning("could not post event %s on %s: %s", reason, meta.get("name"), error)

    async def flush(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
