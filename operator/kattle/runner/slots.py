"""How many runs are driven at once, and a run waiting out a backoff gives its slot back.

Without lending, a few hundred runs retrying a broken handler would hold every slot while
they sleep, and runs of unrelated objects, with working handlers, would wait behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

# Runs driven at once unless `--max-active-runs` says otherwise.
DEFAULT_ACTIVE_RUNS = 200


class RunSlots:
    def __init__(self, limit: int) -> None:
        self._free = asyncio.Semaphore(limit)
        self.active = 0  # runs holding a slot now

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """A slot for driving one run."""
        await self._free.acquire()
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._free.release()

    @contextlib.asynccontextmanager
    async def lent(self) -> AsyncIterator[None]:
        """Inside `held`: gives the slot back while the run only waits, takes one again."""
        self.active -= 1
        self._free.release()
        try:
            yield
        finally:
            await self._free.acquire()
            self.active += 1
