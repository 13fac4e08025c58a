"""Two replicas with Kopf peering: the older is active, the younger stands by; the active
one is killed mid-run and the standby finishes every run, each transition once."""

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

NAMESPACE = "kattle-ha"
PEERING = "kattle-ha"
LIFETIME = 15
RESUMED = "Resuming operations after the pause"


@pytest.fixture
def ha_world(api_client: Any, operator: Any, kubectl: Kubectl) -> Iterator[World]:
    with world_in(api_client, kubectl, NAMESPACE) as world:
        kubectl.apply(
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": PEERING, "namespace": NAMESPACE},
            }
        )
        yield world


def _replica(kubeconfig: Path, log: Path) -> OperatorProcess:
    return OperatorProcess(
        kubeconfig,
        log,
        f"--namespace={NAMESPACE}",
        f"--peering={PEERING}",
        f"--peering-lifetime={LIFETIME}",
    )


def test_the_standby_takes_over_when_the_active_replica_is_killed(
    ha_world: World, handler_server: HandlerServer, kubeconfig: Path, tmp_path: Path
) -> None:
    world = ha_world
    active = _replica(kubeconfig, tmp_path / "active.log").start()
    standby = _replica(kubeconfig, tmp_path / "standby.log").start()
    try:
        # Replicas start paused; the older one resumes once it sees it has priority.
        wait_for("the older replica to resume", lambda: RESUMED in active.log.read_text())
        time.sleep(2)  # a few keepalives later, the younger still stands by
        assert RESUMED not in standby.log.read_text()
        world.define_type()
        go = world.process("go", ["requested"], "going", "gone")
        path = f"/{world.type}/slow"
        handler_server.script(path, Reply({"data": {"done": True}}, delay=3.0))
        world.handler("slow", [go], handler_server.url(path), timeoutSeconds=10)
        world.wait_plan(go, 1)
        names = [f"o{i}" for i in range(10)]
        for name in names:
            world.create(name)
        for name in names:
            world.wait_state(name, "requested")
        runs = {name: world.run(go, name) for name in names}
        wait_for("calls in flight", lambda: len(handler_server.calls(path)) >= 5)
        active.kill()
        killed = time.monotonic()

        for name, run in runs.items():
            log = world.wait_run(run, timeout=LIFETIME + 45)
            assert log["phase"] == "Succeeded", (name, log, standby.tail())
            assert [t["to"] for t in log["transitions"]] == ["going", "gone"], (name, log)
            assert world.status(name)["state"] == "gone"
        assert time.monotonic() - killed < LIFETIME + 45
        assert RESUMED in standby.log.read_text()
        # Calls cut short by the kill were made again, with the same idempotency key: one
        # key per run, however many calls.
        calls = handler_server.calls(path)
        assert len(calls) > len(names)
        assert len({call.event["idempotencyKey"] for call in calls}) == len(names)
    finally:
        active.stop()
        standby.stop()
