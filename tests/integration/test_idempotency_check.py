"""`kattle operator --check-idempotency`: every handler step is called twice with the same
event; replies that differ fail the step at once, naming the differences. The shipped Node.js
sample passes (the Python sample passes the SDK's check: tests/unit/test_sdk_testing.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.node_sample import drive_go, node_sample
from tests.support.operator import OperatorProcess
from tests.support.world import World, world_in

NAMESPACE = "kattle-idempotency"


@pytest.fixture
def checked(
    api_client: Any, operator: Any, kubectl: Kubectl, kubeconfig: Path, tmp_path: Path
) -> Iterator[World]:
    with world_in(api_client, kubectl, NAMESPACE) as world:
        checking = OperatorProcess(
            kubeconfig, tmp_path / "operator.log", f"--namespace={NAMESPACE}", "--check-idempotency"
        ).start()
        try:
            yield world
        finally:
            checking.stop()


def test_a_handler_that_answers_one_event_two_ways_fails_its_step(
    checked: World, handler_server: HandlerServer
) -> None:
    world = checked
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    steady, fickle = f"/{world.type}/steady", f"/{world.type}/fickle"
    handler_server.script(
        steady,
        Reply({"data": {"zone": "a"}, "message": "first"}),
        Reply({"data": {"zone": "a"}, "message": "again"}),
    )
    handler_server.script(
        fickle, Reply({"data": {"ip": "10.0.0.1"}}), Reply({"data": {"ip": "10.0.0.2"}})
    )
    world.handler("steady", [go], handler_server.url(steady), priority=1, retryLimit=5)
    world.handler("fickle", [go], handler_server.url(fickle), priority=2, retryLimit=5)
    world.wait_plan(go, 2)
    world.create("a")
    world.wait_state("a", "requested")
    final = world.wait_run(world.run(go, "a"))
    assert (final["phase"], final["exitReason"]) == ("Failed", "PermanentError"), final
    assert f"handler {world.type}-fickle is not idempotent" in final["message"], final
    assert 'data.ip: "10.0.0.1" != "10.0.0.2"' in final["message"], final
    # Each step was called twice with one event; the fickle one was not retried.
    for path in (steady, fickle):
        calls = handler_server.calls(path)
        assert len(calls) == 2, calls
        assert calls[0].body == calls[1].body


def test_the_shipped_node_sample_passes_the_check(
    checked: World, kubectl: Kubectl, tmp_path: Path
) -> None:
    world = checked
    with node_sample(kubectl, world.namespace, tmp_path) as (url, ref):
        final = drive_go(world, url, ref)
    assert final["phase"] == "Succeeded", final
    assert final["data"]["greeting"] == "hello from node, a"
