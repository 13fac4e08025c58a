"""Helpers for handler authors' own tests: build events, and check that a handler is
idempotent, as the operator will rely on.

    import asyncio
    from kattle.sdk.testing import assert_idempotent, event

    def test_allocate_ip_is_idempotent():
        asyncio.run(assert_idempotent(app, event("instance.create", name="web-1")))

`assert_idempotent` calls the handler twice with the same event, as the operator does after
a timeout, a lost reply or a restart, and fails naming every field whose value differed
(the `message` note excepted). `kattle operator --check-idempotency` does the same in a
cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kattle.api.webhook import ProcessEvent, ProcessReply, RunInfo
from kattle.machine.idempotency import verdict
from kattle.sdk.app import HandlerApp


def event(
    process: str,
    *,
    phase: str = "handler",
    name: str = "test-object",
    uid: str = "00000000-0000-4000-8000-000000000001",
    spec: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    attempt: int = 1,
) -> ProcessEvent:
    """A ProcessEvent for `process` on an object `name`, as the operator would send it."""
    type_name, _, verb = process.partition(".")
    return ProcessEvent.model_validate(
        {
            "process": process,
            "phase": phase,
            "handler": "test",
            "attempt": attempt,
            "idempotencyKey": f"{uid}/0/test",
            "run": RunInfo(
                name=f"{name}.{verb}-test", namespace="default", uid=uid, trigger="manual"
            ),
            "fromState": "",
            "transitioning": f"{verb}ing",
            "done": f"{verb}d",
            "resource": {
                "apiVersion": "resources.kattle.dev/v1",
                "kind": type_name.capitalize(),
                "metadata": {"name": name, "namespace": "default", "uid": uid},
                "spec": dict(spec or {}),
                "status": {},
            },
            "data": dict(data or {}),
        }
    )


async def assert_idempotent(app: HandlerApp, sent: ProcessEvent) -> ProcessReply:
    """The reply, after checking that a second call with the same event gives the same one."""
    first = await app.handle(sent)
    second = await app.handle(sent.model_copy(deep=True))
    problem = verdict(sent.handler, sent.idempotency_key, first.to_wire(), second.to_wire())
    if problem is not None:
        raise AssertionError(problem)
    return first
