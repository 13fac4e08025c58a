"""The operator's own HTTP endpoints: /metrics, /healthz (alive) and /readyz (serving).

Served from the operator's event loop, so a loop that stops turning also stops answering
/healthz, which is what a liveness probe should notice.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from kattle.observability.metrics import Metrics


class HealthServer:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.ready = asyncio.Event()  # set once definitions are loaded and watches run
        self._runner: web.AppRunner | None = None

    async def start(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host or "0.0.0.0", int(port)).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, _: web.Request) -> web.Response:
        if self.ready.is_set():
            return web.Response(text="ok")
        return web.Response(text="starting: loading definitions", status=503)
