"""Keeps the `kattle.dev/dot` annotation of every ProcessDefinition and ResourceDefinition
current with the catalog.

Any definition event may change several diagrams (a handler appears on each process it
attaches to and on their types), so after a burst of events one pass redraws them all and
writes only those that differ: an unchanged catalog writes nothing.
"""

from __future__ import annotations

import asyncio
import logging

from kattle.api.processdefinition import ProcessDefinition
from kattle.api.resourcedefinition import ResourceDefinition
from kattle.diagrams import ANNOTATION, process_diagram, resource_diagram
from kattle.kube.client import ApiError
from kattle.kube.kinds import PROCESS_DEFINITIONS, RESOURCE_DEFINITIONS
from kattle.runner.run import Engine

logger = logging.getLogger(__name__)

# Events come in bursts (start-up lists every definition, `kubectl apply -f` of a file):
# one pass after the burst settles.
SETTLE_SECONDS = 0.2


class DiagramKeeper:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dirty = False
        self._task: asyncio.Task[None] | None = None

    def changed(self) -> None:
        """Some definition changed: redraw soon."""
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._redraw_while_dirty())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _redraw_while_dirty(self) -> None:
        while self._dirty:
            await asyncio.sleep(SETTLE_SECONDS)
            self._dirty = False
            try:
                await self.redraw()
            except (ApiError, OSError, TimeoutError) as error:
                logger.warning("could not update diagrams: %s; trying again", error)
                self._dirty = True
                await asyncio.sleep(1.0)

    async def redraw(self) -> int:
        """Writes every diagram that differs from its annotation; returns how many."""
        catalog = self.engine.catalog
        written = 0
        for name in sorted(catalog.processes):
            written += await self._annotate(catalog.processes[name], process_diagram(catalog, name))
        for name in sorted(catalog.resources):
            written += await self._annotate(
                catalog.resources[name], resource_diagram(catalog, name)
            )
        return written

    async def _annotate(self, definition: ProcessDefinition | ResourceDefinition, dot: str) -> int:
        if definition.metadata.annotations.get(ANNOTATION) == dot:
            return 0
        name = definition.metadata.name or ""
        is_process = isinstance(definition, ProcessDefinition)
        kind = PROCESS_DEFINITIONS if is_process else RESOURCE_DEFINITIONS
        updated = await self.engine.kube.patch(
            kind, name, {"metadata": {"annotations": {ANNOTATION: dot}}}, missing_ok=True
        )
        if updated is None:
            return 0
        model = ProcessDefinition if is_process else ResourceDefinition
        current = self.engine.catalog.processes if is_process else self.engine.catalog.resources
        if name in current:  # not dropped meanwhile
            self.engine.catalog.put(model.model_validate(updated))
        return 1
