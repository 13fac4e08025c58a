"""What every run needs, built once at start-up and never changed: the API, the handlers,
the definitions, Events, metrics, the run slots, and what this operator saw end.

Every collaborator is passed in; nothing is rewired after construction, so what a run can
reach is plain from the constructor call in `wiring/app.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kattle.kube.client import KubeClient
from kattle.kube.events import EventRecorder
from kattle.machine.catalog import Catalog
from kattle.observability.metrics import Metrics
from kattle.runner.cache import ObjectCache
from kattle.runner.history import History
from kattle.runner.namespaces import NamespaceLabels
from kattle.runner.slots import RunSlots
from kattle.runner.watch import RunWatch
from kattle.webhooks.client import WebhookClient

ObjectKey = tuple[str, str, str]  # (namespace of the runs, resource type, object name)


class EndedRuns:
    """Which runs of each object this operator knows to have ended: saves reading a run
    back before the next one takes the object."""

    def __init__(self) -> None:
        self.history = History()
        # The run each object's worker saw end last, until the watch reports it ended too.
        self._here: dict[ObjectKey, str] = {}

    def known(self, key: ObjectKey, name: str) -> bool:
        return self._here.get(key) == name or self.history.has(key, name)

    def ended_here(self, key: ObjectKey, name: str) -> None:
        if not self.history.has(key, name):
            self._here[key] = name

    def reported(self, key: ObjectKey, name: str) -> None:
        """The watch reported the run's end, or its deletion."""
        if self._here.get(key) == name:
            del self._here[key]


class CatalogRefresher:
    """Reads every definition into the catalog, at most once a second."""

    def __init__(self, load: Callable[[Engine], Awaitable[None]], every: float = 1.0) -> None:
        self._load = load
        self._every = every
        self._at = float("-inf")

    async def refresh(self, engine: Engine) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._at < self._every:
            return
        self._at = loop.time()
        await self._load(engine)


@dataclass(frozen=True)
class Engine:
    kube: KubeClient
    webhooks: WebhookClient
    catalog: Catalog
    events: EventRecorder
    objects: ObjectCache
    metrics: Metrics
    slots: RunSlots
    ended: EndedRuns
    watch: RunWatch
    namespaces: NamespaceLabels
    # None: the catalog is only what the definitions' watch brought in.
    refresher: CatalogRefresher | None
    # `kattle operator --check-idempotency`: every handler step is called twice (a
    # development and CI aid; see machine/idempotency.py).
    check_idempotency: bool = False

    async def refresh_catalog(self) -> None:
        if self.refresher is not None:
            await self.refresher.refresh(self)
