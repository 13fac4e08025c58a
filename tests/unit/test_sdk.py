"""The handler SDK's dispatch and error handling, without a network."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

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


def test_an_invalid_returned_dict_becomes_an_error_reply() -> None:
    app = HandlerApp()

    @app.on("instance.create")
    async def wrong(_: ProcessEvent) -> dict[str, Any]:
        return {"retryAfterSeconds": "soon"}

    reply = asyncio.run(app.handle(_event()))
    assert reply.error is not None
    assert reply.error.startswith("the handler returned an invalid reply")


def test_a_bearer_token_is_required_when_configured() -> None:
    app = HandlerApp(bearer_token="s3cret\n")

    @app.on("instance.create")
    async def ok(_: ProcessEvent) -> ProcessReply:
        return ProcessReply(message="in")

    body = _event().to_wire()

    async def check() -> None:
        async with TestClient(TestServer(app.web_app(), host="127.0.0.1")) as client:
            for headers, status in [
                ({}, 401),
                ({"Authorization": "Bearer wrong"}, 401),
                ({"Authorization": "s3cret"}, 401),
                ({"Authorization": "Bearer s3cret"}, 200),
            ]:
                response = await client.post("/", json=body, headers=headers)
                assert response.status == status, headers
                if status == 200:
                    assert (await response.json())["message"] == "in"
                else:
                    assert "bearer token" in (await response.json())["error"]
            assert (await client.get("/healthz")).status == 200

    asyncio.run(check())
