"""The operator killed (SIGKILL) mid-run and started again: every run finishes, exactly once.

A second operator process of its own serves a namespace of its own, so it can be killed
without touching the session's operator. It is killed while a handler call is in flight:
in the first handler (right after the transitioning write), between two handlers, and in
the last (post) handler, just before done.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.world import World, wait_for, world_in

NAMESPACE = "kattle-resume"


@pytest.fixture
def resume_world(api_client: Any, operator: Any, kubectl: Kubectl) -> Iterator[World]:
    with world_in(api_client, kubectl, NAMESPACE) as world:
        yield world


@pytest.mark.parametrize("kill_in", ["pre", "main", "post"])
def test_a_killed_operator_resumes_every_run_exactly_once(
    resume_world: World,
    handler_server: HandlerServer,
    kubeconfig: Path,
    tmp_path: Path,
    kill_in: str,
) -> None:
    world = resume_world
    world.define_type()
    world.process("create", ["requested"], "creating", "stopped", trigger="create")
    go = world.process("go", ["stopped"], "going", "gone")
    prefix = f"/{world.type}"
    for name, phase in (("pre", "pre"), ("main", "handler"), ("post", "post")):
        path = f"{prefix}/{name}"
        if name == kill_in:
            # The first call hangs, so the operator is killed with the call in flight.
            handler_server.script(
                path, Reply({"data": {name: 1}}, delay=3.0), Reply({"data": {name: 1}})
            )
        else:
            handler_server.script(path, Reply({"data": {name: 1}}))
        world.handler(name, [go], handler_server.url(path), phase=phase, timeoutSeconds=10)

    log = tmp_path / "operator.log"
    operator = OperatorProcess(kubeconfig, log, f"--namespace={NAMESPACE}").start()
    try:
        world.wait_plan(go, 3)
        world.create("a")
        world.wait_state("a", "stopped")
        run = world.run(go, "a")
        wait_for(
            f"the {kill_in} handler to be called",
            lambda: handler_server.calls(f"{prefix}/{kill_in}"),
        )
        operator.kill()
        status = world.status("a")
        assert (status["state"], status["activeRun"]) == ("going", run)

        operator = OperatorProcess(kubeconfig, log, f"--namespace={NAMESPACE}").start()
        final = world.wait_run(run, timeout=60)
    finally:
        operator.stop()

    assert final["phase"] == "Succeeded", final
    assert [(t["from"], t["to"]) for t in final["transitions"]] == [
        ("stopped", "going"),
        ("going", "gone"),
    ]
    assert final["data"] == {"pre": 1, "main": 1, "post": 1}
    status = world.status("a")
    assert (status["state"], status["transitioning"]) == ("gone", "no")
    assert "activeRun" not in status
    killed = handler_server.calls(f"{prefix}/{kill_in}")
    assert len(killed) == 2
    assert killed[0].event["idempotencyKey"] == killed[1].event["idempotencyKey"]
    # Handlers before the kill point are called again (same key); none after it twice.
    order = ["pre", "main", "post"]
    for name in order[order.index(kill_in) + 1 :]:
        assert len(handler_server.calls(f"{prefix}/{name}")) == 1
    assert len(world.runs("a")) == 2  # the create run and this one: nothing started twice
