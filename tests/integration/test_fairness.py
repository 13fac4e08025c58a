"""One broken handler does not stall unrelated runs: a run waiting out a backoff gives its
slot back. An operator of its own drives at most one run at a time, to make that visible."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.world import World, wait_for, world_in

NAMESPACE = "kattle-fairness"


@pytest.fixture
def fair_world(api_client: Any, operator: Any, kubectl: Kubectl) -> Iterator[World]:
    with world_in(api_client, kubectl, NAMESPACE) as world:
        yield world


def test_a_run_in_backoff_does_not_hold_up_other_objects(
    fair_world: World, handler_server: HandlerServer, kubeconfig: Path, tmp_path: Path
) -> None:
    world = fair_world
    world.define_type()
    bad = world.process("bad", ["requested"], "bading", "broken")
    good = world.process("good", ["requested"], "gooding", "fine")
    handler_server.script(f"/{world.type}/bad", Reply({"oops": True}, status=500))
    world.handler("bad", [bad], handler_server.url(f"/{world.type}/bad"), retryLimit=5)
    world.handler("good", [good], handler_server.url(f"/{world.type}/good"))
    operator = OperatorProcess(
        kubeconfig, tmp_path / "operator.log", f"--namespace={NAMESPACE}", "--max-active-runs=1"
    ).start()
    try:
        world.wait_plan(bad, 1)
        world.wait_plan(good, 1)
        for obj in ("stuck", "free"):
            world.create(obj)
            world.wait_state(obj, "requested")
        stuck = world.run(bad, "stuck")
        wait_for(
            "the broken run to retry",
            lambda: world.pi(stuck).get("status", {}).get("phase") == "Retrying",
        )
        started = time.monotonic()
        log = world.wait_run(world.run(good, "free"), timeout=20)
        assert log["phase"] == "Succeeded"
        assert time.monotonic() - started < 10
        assert world.pi(stuck)["status"]["phase"] == "Retrying"
    finally:
        operator.stop()
