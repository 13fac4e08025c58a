"""`kattle operator --events=warnings`: no Events for runs that go well, every warning kept.

An operator of its own serves a namespace of its own, with the flag set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.world import World, event_reasons, wait_for, world_in

NAMESPACE = "kattle-warnings"


@pytest.fixture
def quiet_world(api_client: Any, operator: Any, kubectl: Kubectl) -> Iterator[World]:
    with world_in(api_client, kubectl, NAMESPACE) as world:
        yield world


def test_warnings_only_skips_run_events_but_keeps_warnings_and_requests(
    quiet_world: World,
    handler_server: HandlerServer,
    kubectl: Kubectl,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    world = quiet_world
    world.define_type()
    ok = world.process("ok", ["requested"], "oking", "fine")
    bad = world.process("bad", ["fine"], "bading", "broken")
    handler_server.script(
        f"/{world.type}/ok",
        Reply({"events": [{"reason": "AskedFor", "message": "a handler wanted this"}]}),
    )
    handler_server.script(f"/{world.type}/bad", Reply({"error": "no way"}))
    world.handler("ok", [ok], handler_server.url(f"/{world.type}/ok"))
    world.handler("bad", [bad], handler_server.url(f"/{world.type}/bad"), retryLimit=0)
    operator = OperatorProcess(
        kubeconfig, tmp_path / "operator.log", f"--namespace={NAMESPACE}", "--events=warnings"
    ).start()
    try:
        world.wait_plan(ok, 1)
        world.wait_plan(bad, 1)
        world.create("a")
        world.wait_state("a", "requested")
        assert world.wait_run(world.run(ok, "a"))["phase"] == "Succeeded"
        assert world.wait_run(world.run(bad, "a"))["phase"] == "Failed"

        seen = wait_for(
            "the warning",
            lambda: "ProcessFailed" in (r := event_reasons(kubectl, world, "a")) and r,
        )
        assert "AskedFor" in seen
        assert not {"Transitioning", "Done"} & seen, seen
    finally:
        operator.stop()
