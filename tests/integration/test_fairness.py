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


def test_waiting_runs_start_by_their_process_priority(
    fair_world: World, handler_server: HandlerServer, kubeconfig: Path, tmp_path: Path
) -> None:
    """One slot, held by a slow run; then three runs of a low-priority process and one of a
    high-priority process (Cattle's +1000 for system work) are asked for, in that order. The
    high one starts next, then the low ones in the order they came."""
    world = fair_world
    world.define_type()
    low = world.process("low", ["requested"], "lowing", "low-done")
    high = world.process("high", ["requested"], "highing", "high-done", priority=1000)
    slow = f"/{world.type}/slow"
    # Long enough for every later run to be queued for the slot before it frees.
    handler_server.script(slow, Reply({}, delay=4.0), Reply({}))
    fast = f"/{world.type}/fast"
    world.handler("slow", [low], handler_server.url(slow))
    world.handler("fast", [high], handler_server.url(fast))
    operator = OperatorProcess(
        kubeconfig, tmp_path / "operator.log", f"--namespace={NAMESPACE}", "--max-active-runs=1"
    ).start()
    try:
        world.wait_plan(low, 1)
        world.wait_plan(high, 1)
        names = ["hold", "l1", "l2", "l3", "h"]
        for obj in names:
            world.create(obj)
            world.wait_state(obj, "requested")
        first = world.run(low, "hold")
        wait_for("the slow run to call its handler", lambda: handler_server.calls(slow))
        runs = [world.run(low, obj) for obj in ("l1", "l2", "l3")] + [world.run(high, "h")]
        finals = [world.wait_run(run, timeout=60) for run in (first, *runs)]
    finally:
        operator.stop()
    assert all(f["phase"] == "Succeeded" for f in finals), finals
    # One slot: each run calls its handler once it has the slot, so the calls' order is the
    # order the runs got it.
    seen = [
        c.event["resource"]["metadata"]["name"]
        for c in handler_server.calls()
        if c.path in (slow, fast)
    ]
    assert seen == ["hold", "h", "l1", "l2", "l3"], seen
