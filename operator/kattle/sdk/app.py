"""A ready web app for handler webhooks: register functions per process, serve them.

    app = HandlerApp()

    @app.on("instance.create")
    async def allocate(event: ProcessEvent) -> ProcessReply:
        return ProcessReply(data={"ip": "10.0.0.7"}, status={"ip": "10.0.0.7"})

    app.run(port=8080)

Requests are dispatched by the event's process and phase, so one service can serve many
ProcessHandlers at any path. A function may return a ProcessReply, a dict of reply fields,
or None (done, nothing to add). An exception becomes an error reply with its message, so the
operator records why and retries: a bug in a handler never hangs a process.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from kattle.api.processdefinition import HandlerPhase
from kattle.api.webhook import MAX_REPLY_BYTES, ProcessEvent, ProcessReply
from kattle.machine.globs import selector_matches
from kattle.webhooks.signing import DEFAULT_TOLERANCE_SECONDS, SignatureError, verify

logger = logging.getLogger(__name__)

HandlerFn = Callable[[ProcessEvent], Awaitable[ProcessReply | dict[str, Any] | None]]


class HandlerError(Exception):
    """Raise to fail the step with this message (the operator retries it; with
    `permanent=True` it does not: the failure is for good, e.g. bad input)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class HandlerApp:
    def __init__(
        self,
        *,
        signing_key: bytes | str | None = None,
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
        bearer_token: str | None = None,
    ) -> None:
        """With a `signing_key` (the value in the Secret a ProcessHandler's signingSecretRef
        names), every request must carry a valid, recent signature; with a `bearer_token`
        (bearerTokenSecretRef's value), `Authorization: Bearer <token>`. Others get HTTP 401."""
        self._handlers: list[tuple[str, HandlerPhase | None, HandlerFn]] = []
        self.signing_key = signing_key.encode() if isinstance(signing_key, str) else signing_key
        self.tolerance_seconds = tolerance_seconds
        self.bearer_token = bearer_token.strip() if bearer_token is not None else None

    def on(
        self, process: str, *, phase: HandlerPhase | None = None
    ) -> Callable[[HandlerFn], HandlerFn]:
        """Registers a function for a process (`instance.create`, or `*.create`), any phase
        unless one is given."""

        def register(fn: HandlerFn) -> HandlerFn:
            self._handlers.append((process, phase, fn))
            return fn

        return register

    def registrations(self) -> list[tuple[str, HandlerPhase | None, HandlerFn]]:
        """(process selector, phase or None for any, function), in registration order."""
        return list(self._handlers)

    def find(self, event: ProcessEvent) -> HandlerFn | None:
        for selector, phase, fn in self._handlers:
            if selector_matches(selector, event.process) and phase in (None, event.phase):
                return fn
        return None

    async def handle(self, event: ProcessEvent) -> ProcessReply:
        fn = self.find(event)
        if fn is None:
            return ProcessReply(
                error=f"this service has no handler for {event.process} ({event.phase})"
            )
        try:
            result = await fn(event)
        except HandlerError as error:
            return ProcessReply(error=str(error), permanent=error.permanent or None)
        except Exception as error:  # any bug in user code becomes a clear error reply
            logger.exception("handler for %s failed", event.process)
            return ProcessReply(error=f"{type(error).__name__}: {error}")
        if result is None:
            return ProcessReply()
        if isinstance(result, ProcessReply):
            return result
        try:
            return ProcessReply.model_validate(result)
        except ValidationError as error:
            return ProcessReply(error=f"the handler returned an invalid reply: {error}")

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REPLY_BYTES * 8)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_post("/{path:.*}", self._serve)
        return app

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _serve(self, request: web.Request) -> web.Response:
        if self.bearer_token is not None:
            sent = request.headers.get("Authorization", "")
            expected = f"Bearer {self.bearer_token}"
            if not hmac.compare_digest(sent.encode(), expected.encode()):
                logger.warning("refused a request: missing or wrong bearer token")
                return web.json_response(
                    {"error": "refused: missing or wrong bearer token"}, status=401
                )
        body = await request.read()
        if self.signing_key is not None:
            try:
                verify(self.signing_key, request.headers, body, tolerance=self.tolerance_seconds)
            except SignatureError as error:
                logger.warning("refused a request: %s", error)
                return web.json_response({"error": f"refused: {error}"}, status=401)
        try:
            event = ProcessEvent.model_validate_json(body)
        except ValidationError as error:
            return web.json_response(
                {"error": f"not a ProcessEvent: {error.errors()[:3]}"}, status=400
            )
        reply = await self.handle(event)
        return web.json_response(reply.to_wire())

    def run(self, *, host: str = "0.0.0.0", port: int = 8080) -> None:
        # Handler calls are short: on SIGTERM, finish what is in flight within a few seconds.
        web.run_app(
            self.web_app(), host=host, port=port, access_log=None, print=None, shutdown_timeout=3.0
        )
