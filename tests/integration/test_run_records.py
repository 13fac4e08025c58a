"""Runs that begin without a record. `record: OnFailure`: a create run that succeeds leaves
no ProcessInstance, only the object's `lastRun`; one that fails records itself, with
everything a recorded run shows; a run without a record still holds its object against
other runs; and an operator killed while such a run holds its object starts it again, by its
name, with the same keys. `record: Always` (the default): a create run's record is written
once, complete, as it ends, and one lost to a kill is written from `lastRun`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kattle.machine.records import lifecycle_run_name
from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.world import World, wait_for, world_in

NAMESPACE = "kattle-records"


def _lean_type(
    world: World, handler_server: HandlerServer, *replies: Reply, **handler: object
) -> str:
    """A type whose create process (requested -> creating -> ready) records failures only,
    with one handler answering `replies` in turn. Returns the handler's path."""
    world.define_type()
    create = world.process(
        "create", ["requested"], "creating", "ready", trigger="create", record="OnFailure"
    )
    path = f"/{world.type}/make"
    handler_server.script(path, *replies)
    world.handler("make", [create], handler_server.url(path), **handler)
    world.wait_plan(create, 1)
    return path


def test_a_create_run_that_succeeds_leaves_no_record(
    world: World, handler_server: HandlerServer
) -> None:
    path = _lean_type(world, handler_server, Reply({"status": {"value": "42"}}))
    world.create("a")
    status = world.wait_state("a", "ready")
    assert status["value"] == "42"
    assert status["lastRun"]["phase"] == "Succeeded", status
    assert status["lastRun"]["exitReason"] == "Done", status
    assert world.runs("a") == []
    assert len(handler_server.calls(path)) == 1
    # The run's handler saw a run: named as the object's lastRun, with a stable uid stand-in.
    run = handler_server.calls(path)[0].event["run"]
    assert run["name"] == status["lastRun"]["name"]
    assert run["uid"] == run["name"]


def test_a_create_run_that_fails_records_itself(
    world: World, handler_server: HandlerServer
) -> None:
    path = _lean_type(
        world, handler_server, Reply({"error": "disk full"}), retryLimit=1, timeoutSeconds=5
    )
    world.create("a")
    runs = wait_for("the failed create run's record", lambda: world.runs("a"))
    final = world.wait_run(runs[0]["metadata"]["name"], timeout=60)
    assert final["phase"] == "Failed", final
    assert final["attempts"] == 2, final
    assert [(t["from"], t["to"]) for t in final["transitions"]] == [("requested", "creating")]
    calls = handler_server.calls(path)
    assert len(calls) == 2
    assert calls[0].event["idempotencyKey"] == calls[1].event["idempotencyKey"]
    assert world.status("a")["lastRun"]["name"] == runs[0]["metadata"]["name"]


@pytest.fixture
def own_world(api_client: Any, operator: Any, kubectl: Kubectl) -> Iterator[World]:
    with world_in(api_client, kubectl, NAMESPACE) as world:
        yield world


def test_a_killed_operator_starts_a_run_without_a_record_again(
    own_world: World, handler_server: HandlerServer, kubeconfig: Path, tmp_path: Path
) -> None:
    """Killed while the create run holds the object; meanwhile a user asks for `poke`, which
    may start from `creating`: only the holder's being alive, with no record to show it,
    keeps `poke` from taking the object before the create run is started again."""
    world = own_world
    path = _lean_type(
        world,
        handler_server,
        Reply({"status": {"value": "1"}}, delay=5.0),
        Reply({"status": {"value": "2"}}),
        timeoutSeconds=10,
    )
    poke = world.process("poke", ["ready", "creating"], "poking", "ready")
    log = tmp_path / "operator.log"
    operator = OperatorProcess(kubeconfig, log, f"--namespace={NAMESPACE}").start()
    try:
        world.create("a")
        wait_for("the create handler to be called", lambda: handler_server.calls(path))
        operator.kill()
        held = world.status("a")
        assert held["state"] == "creating", held
        assert held["activeRun"], held
        run = world.run(poke, "a")
        operator = OperatorProcess(kubeconfig, log, f"--namespace={NAMESPACE}").start()
        final = world.wait_run(run, timeout=60)
    finally:
        operator.stop()
    assert final["phase"] == "Succeeded", final
    assert [(t["from"], t["to"]) for t in final["transitions"]] == [
        ("ready", "poking"),
        ("poking", "ready"),
    ], final
    status = world.status("a")
    assert status["value"] == "2"
    calls = handler_server.calls(path)
    assert len(calls) == 2
    assert calls[0].event["idempotencyKey"] == calls[1].event["idempotencyKey"]
    assert calls[0].event["run"]["name"] == held["activeRun"] == calls[1].event["run"]["name"]
    assert [r["metadata"]["name"] for r in world.runs("a")] == [run]


def test_a_default_create_run_writes_its_record_once_complete_as_it_ends(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    create = world.process("create", ["requested"], "creating", "ready", trigger="create")
    path = f"/{world.type}/make"
    handler_server.script(path, Reply({"data": {"made": 1}, "status": {"value": "42"}}, delay=1.0))
    world.handler("make", [create], handler_server.url(path))
    world.wait_plan(create, 1)
    world.create("a")
    wait_for("the create handler to be called", lambda: handler_server.calls(path))
    held = world.status("a")
    # While the handler works, the object shows the run; its record is not written yet.
    assert held["state"] == "creating", held
    assert held["activeRun"], held
    assert world.runs("a") == [], "a record was written before the run ended"

    world.wait_state("a", "ready")
    (record,) = wait_for("the create run's record", lambda: world.runs("a"))
    status = record["status"]
    assert record["metadata"]["name"] == held["activeRun"]
    # Without a status subresource every write of a status bumps the generation: 1 is
    # the create, so the record was written once, complete.
    assert record["metadata"]["generation"] == 1, record
    assert (status["phase"], status["exitReason"]) == ("Succeeded", "Done"), status
    assert [(t["from"], t["to"]) for t in status["transitions"]] == [
        ("requested", "creating"),
        ("creating", "ready"),
    ]
    assert [c["outcome"] for c in status["handlerCalls"]] == ["Succeeded"], status
    assert status["data"] == {"made": 1}
    assert record["spec"]["trigger"] == "create"


def test_a_create_runs_record_lost_to_a_kill_is_written_from_last_run_by_the_next_run(
    own_world: World, handler_server: HandlerServer, kubeconfig: Path, tmp_path: Path
) -> None:
    """The state an operator leaves when killed after a default create run's last write to
    its object and before its record, set up by hand: the object is done, its `lastRun`
    names the create run, which has no record. The next run on the object writes that
    record from `lastRun` before it goes."""
    world = own_world
    world.define_type()
    create = world.process("create", ["requested"], "creating", "ready", trigger="create")
    poke = world.process("poke", ["ready"], "poking", "ready")
    obj = world.create("a")
    lost = lifecycle_run_name(obj["metadata"], create)
    now = "2026-12-05T10:00:00Z"
    last = {
        "name": lost,
        "process": create,
        "phase": "Succeeded",
        "exitReason": "Done",
        "fromState": "requested",
        "startTime": now,
        "endTime": now,
        "data": {"made": 1},
    }
    world.set_status("a", {"state": "ready", "transitioning": "no", "lastRun": last})
    run = world.run(poke, "a")
    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", f"--namespace={NAMESPACE}")
    operator.start()
    try:
        final = world.wait_run(run, timeout=60)
        written = world.wait_run(lost)
    finally:
        operator.stop()
    assert (final["phase"], final["exitReason"]) == ("Succeeded", "Done"), final
    assert (written["phase"], written["exitReason"]) == ("Succeeded", "Done"), written
    assert [(t["from"], t["to"]) for t in written["transitions"]] == [
        ("requested", "creating"),
        ("creating", "ready"),
    ], written
    assert written["data"] == {"made": 1}
    assert written["endTime"] == now
    assert sorted(r["metadata"]["name"] for r in world.runs("a")) == sorted([lost, run])
