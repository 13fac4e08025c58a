"""Delegation against the real API server: one run, one record, handed from process to
process (Cattle's delegate); and resumed where it went after the operator is killed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.world import World, wait_for, world_in

NAMESPACE = "kattle-delegation"


def agent_type(world: World, handler_server: HandlerServer, **create: Any) -> tuple[str, str]:
    """agent.create (requested -> registering -> inactive) delegating to agent.activate
    (inactive -> activating -> active), a handler on each."""
    world.define_type()
    create_ = world.process(
        "create", ["requested"], "registering", "inactive", trigger="create", **create
    )
    activate = world.process("activate", ["inactive"], "activating", "active")
    for process in (create_, activate):
        path = f"/{process}"
        world.handler(process.partition(".")[2], [process], handler_server.url(path))
        world.wait_plan(process, 1)
    return create_, activate


def test_a_create_delegates_to_activate_in_one_record(
    world: World, handler_server: HandlerServer
) -> None:
    create, activate = agent_type(world, handler_server, delegate=f"{world.type}.activate")
    handler_server.script(f"/{create}", Reply({"data": {"key": "k-1"}, "status": {"key": "k-1"}}))
    world.create("a")
    world.wait_state("a", "active")
    [run] = world.ended_runs("a", 1)  # no second record: the activate ran inside the create's
    log = run["status"]
    assert (log["phase"], log["exitReason"], log["delegatedTo"]) == (
        "Succeeded",
        "Done",
        [activate],
    )
    assert [(t["from"], t["to"]) for t in log["transitions"]] == [
        ("requested", "registering"),
        ("registering", "activating"),
        ("activating", "active"),
    ]
    [called] = handler_server.calls(f"/{activate}")
    assert (called.event["process"], called.event["transitioning"]) == (activate, "activating")
    assert called.event["data"] == {"key": "k-1"}
    [first] = handler_server.calls(f"/{create}")
    assert called.event["idempotencyKey"] != first.event["idempotencyKey"]
    assert world.status("a")["key"] == "k-1"  # the create handler's write, at the end


def test_a_reply_delegates_and_a_bad_delegate_fails_the_run(
    world: World, handler_server: HandlerServer
) -> None:
    create, activate = agent_type(world, handler_server)
    handler_server.script(f"/{create}", Reply({"delegate": activate}), Reply({"delegate": create}))
    world.create("a")
    world.wait_state("a", "active")
    [run] = world.ended_runs("a", 1)
    assert run["status"]["delegatedTo"] == [activate]

    world.create("b")
    log = wait_for(
        "b's create to fail",
        lambda: (r := world.runs("b")) and r[0].get("status", {}).get("phase") == "Failed" and r,
    )[0]["status"]
    assert log["exitReason"] == "Invalid"
    assert f"{create} delegates to {create}, which does not start from inactive" in log["message"]


@pytest.fixture
def delegation_world(api_client: Any, operator: Any, kubectl: Kubectl) -> Iterator[World]:
    with world_in(api_client, kubectl, NAMESPACE) as world:
        yield world


def test_a_run_killed_in_its_delegate_resumes_there(
    delegation_world: World, handler_server: HandlerServer, kubeconfig: Path, tmp_path: Path
) -> None:
    world = delegation_world
    log = tmp_path / "operator.log"
    operator = OperatorProcess(kubeconfig, log, f"--namespace={NAMESPACE}").start()
    try:
        create, activate = agent_type(world, handler_server, delegate=f"{world.type}.activate")
        handler_server.script(f"/{create}", Reply({"data": {"key": "k-1"}}))
        # The delegate's first call hangs: the operator is killed with it in flight.
        handler_server.script(f"/{activate}", Reply({}, delay=3.0), Reply({}))
        world.create("a")
        wait_for("the delegate's call", lambda: handler_server.calls(f"/{activate}"))
        operator.kill()
        status = world.status("a")
        assert (status["state"], status["process"]) == ("activating", activate), status

        operator = OperatorProcess(kubeconfig, log, f"--namespace={NAMESPACE}").start()
        world.wait_state("a", "active", timeout=60)
    finally:
        operator.stop()
    [run] = world.ended_runs("a", 1)
    assert run["status"]["delegatedTo"] == [activate]
    assert run["status"]["data"] == {"key": "k-1"}
    # Not called again: the run resumed in the delegate, whose step was called again with
    # the same idempotency key.
    assert len(handler_server.calls(f"/{create}")) == 1
    calls = handler_server.calls(f"/{activate}")
    assert len(calls) == 2
    assert calls[0].event["idempotencyKey"] == calls[1].event["idempotencyKey"]
