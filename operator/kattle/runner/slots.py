"""How many runs are driven at once, which waiting run goes next, and a run waiting out a
backoff gives its slot back.

Waiting runs take a free slot by their process's `priority` (higher first; Cattle gave its
system resources +1000), then first come, first served. Without lending, a few hundred runs
retrying a broken handler would hold every slot while they sleep, and runs of unrelated
objects, with working handlers, would wait behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator

# Runs driven at once unless `--max-active-runs` says otherwise.
DEFAULT_ACTIVE_RUNS = 200


class RunSlots:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.active = 0  # runs holding a slot now
        # (-priority, arrival, future): the best waiter first. A future resolved hands its
        # waiter a slot that `active` already counts.
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self.waiting = 0  # runs waiting for a slot (cancelled ones stay in the heap, uncounted)

    async def _acquire(self, priority: int) -> None:
        if self.active < self._limit and not self.waiting:
            self.active += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-priority, next(self._arrivals), future))
        self.waiting += 1
        try:
            await future
        except asyncio.CancelledError:
            if future.cancelled():
                self.waiting -= 1
            else:
                self._release()  # handed a slot just as it was cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                self.waiting -= 1
                future.set_result(None)  # the slot goes straight to the best waiter
                return
        self.active -= 1

    @contextlib.asynccontextmanager
    async def held(self, priority: int = 0) -> AsyncIterator[None]:
        """A slot for driving one run of a process of this priority."""
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    @contextlib.asynccontextmanager
    async def lent(self, priority: int = 0) -> AsyncIterator[None]:
        """Inside `held`: gives the slot back while the run only waits, takes one again."""
        self._release()
        try:
            yield
        finally:
            await self._acquire(priority)
