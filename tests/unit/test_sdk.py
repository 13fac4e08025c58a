"""The handler SDK's dispatch and error handling, without a network."""

from __future__ import annotations

import asyncio
from typing import Any

from kattle.sdk import HandlerApp, HandlerError, ProcessEvent, ProcessReply


def _event(process: str = "instance.create", phase: str = "handler") -> ProcessEvent:
    return ProcessEvent.model_validate(
        {
            "process": process,
            "phase": phase,
            "handler": "h",
            "attempt": 1,
            "idempotencyKey": "k",
            "run": {"name": "r", "namespace": "n", "uid": "u", "trigger": "manual"},
            "transitioning": "creating",
            "done": "stopped",
            "resource": {},
            "data": {},
        }
    )


def test_dispatch_by_process_phase_and_wildcard() -> None:
    app = HandlerApp()

    @app.on("instance.create", phase="pre")
    async def pre(_: ProcessEvent) -> dict[str, Any]:
        return {"message": "pre"}

    @app.on("*.create")
    async def any_create(_: ProcessEvent) -> ProcessReply:
        return ProcessReply(message="any")

    async def check() -> None:
        assert (await app.handle(_event(phase="pre"))).message == "pre"
        assert (await app.handle(_event(phase="post"))).message == "any"
        assert (await app.handle(_event("volume.create"))).message == "any"
        assert (await app.handle(_event("volume.start"))).error == (
            "this service has no handler for volume.start (handler)"
        )

    asyncio.run(check())


def test_exceptions_become_error_replies() -> None:
    app = HandlerApp()

    @app.on("instance.create")
    async def refuses(_: ProcessEvent) -> None:
        raise HandlerError("quota exceeded")

    @app.on("instance.start")
    async def buggy(_: ProcessEvent) -> None:
        raise KeyError("spec")

    @app.on("instance.stop")
    async def nothing(_: ProcessEvent) -> None:
        return None

    async def check() -> None:
        assert (await app.handle(_event())).error == "quota exceeded"
        assert (await app.handle(_event("instance.start"))).error == "KeyError: 'spec'"
        assert (await app.handle(_event("instance.stop"))) == ProcessReply()

    asyncio.run(check())
