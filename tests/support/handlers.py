"""A real HTTP handler server on 127.0.0.1 for tests, scripted path by path.

Each path answers with a list of scripted replies, one per call, the last one repeating:
JSON bodies, HTTP statuses, delays, raw bytes. Every request is recorded, so tests can check
what the operator sent (order, attempts, idempotency keys, data).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    body: Any = field(default_factory=dict)  # JSON-able, or bytes sent as they are
    status: int = 200
    delay: float = 0.0
    reset: bool = False  # drop the connection (TCP RST) instead of answering
    stream_bytes: int = 0  # stream this many bytes, chunked, with no Content-Length
    declared_length: int | None = None  # a Content-Length header, whatever is sent


@dataclass
class Received:
    path: str
    event: dict[str, Any]
    headers: dict[str, str]
    body: bytes = b""  # as it came, for checks over the raw bytes (signatures, CloudEvents)


class HandlerServer:
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the handler server did not start")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        raw = await request.read()
        event = json.loads(raw)
        with self._lock:
            self.received.append(Received(path, event, dict(request.headers), raw))
            script = self._scripts.get(path) or [Reply()]
            reply = script.pop(0) if len(script) > 1 else script[0]
        if reply.delay:
            # Cut short when the server closes, so slow calls do not hold up the teardown.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), reply.delay)
        if reply.reset:
            return self._reset(request)
        if reply.stream_bytes or reply.declared_length is not None:
            return await self._stream(request, reply)
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        return web.Response(body=body, status=reply.status, content_type="application/json")

    @staticmethod
    def _reset(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        # Linger 0: close() sends a RST, as a crashing process or a proxy does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return web.Response(status=500)  # never sent: the connection is gone

    @staticmethod
    async def _stream(request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(status=reply.status)
        response.content_type = "application/json"
        if reply.declared_length is not None:
            response.content_length = reply.declared_length
        await response.prepare(request)
        chunk = b" " * 65536
        sent = 0
        try:
            while sent < reply.stream_bytes:
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionResetError, RuntimeError):
            pass  # the client gave up reading, as it should
        return response

    def url(self, path: str) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[path] = list(replies)

    def calls(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]

    def close(self) -> None:
        async def stop() -> None:
            self._closing.set()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
