"""Tells runs that wait for other runs (a parent for its related runs) when those change.

The scheduler sees every run's watch events; a waiting parent registers the names it waits
for and is woken with their newest status. Events can be missed (another operator drives
the runs, a watch reconnects), so waiters also read the runs again now and then: this only
saves them from polling often.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kattle.api.processinstance import FINAL_PHASES

DELETED = {"phase": "Canceled", "exitReason": "Canceled", "message": "the run was deleted"}


class Watcher:
    def __init__(self, hub: RunWatch) -> None:
        self._hub = hub
        self.names: set[str] = set()
        self.statuses: dict[str, Mapping[str, Any]] = {}
        self.changed = asyncio.Event()

    def add(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.names:
                self.names.add(name)
                self._hub._watchers.setdefault(name, []).append(self)

    def note(self, name: str, status: Mapping[str, Any]) -> None:
        known = self.statuses.get(name) or {}
        if known.get("phase") in FINAL_PHASES:
            return  # a final status is never replaced (e.g. by the deletion of a pruned run)
        self.statuses[name] = status
        self.changed.set()


class RunWatch:
    def __init__(self) -> None:
        self._watchers: dict[str, list[Watcher]] = {}

    def saw(self, pi: Mapping[str, Any], *, deleted: bool = False) -> None:
        """A run's watch event (cheap for runs nobody waits for)."""
        watchers = self._watchers.get(pi["metadata"]["name"])
        if not watchers:
            return
        status = DELETED if deleted else (pi.get("status") or {})
        for watcher in watchers:
            watcher.note(pi["metadata"]["name"], status)

    @contextlib.contextmanager
    def watching(self) -> Iterator[Watcher]:
        watcher = Watcher(self)
        try:
            yield watcher
        finally:
            for name in watcher.names:
                others = [w for w in self._watchers.get(name, []) if w is not watcher]
                if others:
                    self._watchers[name] = others
                else:
                    self._watchers.pop(name, None)
