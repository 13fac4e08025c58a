"""The operator killed (SIGKILL) mid-run and started again: every run finishes, exactly once.

A second operator process of its own serves a namespace of its own, so it can be killed
without touching the session's operator. It is killed while a handler call is in flight:
in the first handler (right after the transitioning write), between two handlers, and in
the last (post) handler, just before done.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.witness import SEED_VARIABLE, Witness, runs_seen
from tests.support.world import GROUP, VERSION, World, wait_for, world_in

NAMESPACE = "kattle-resume"


@pytest.fixture
def resume_world(api_client: Any, operator: Any, kubectl: Kubectl) -> Iterator[World]:
    with world_in(api_client, kubectl, NAMESPACE) as world:
        yield world


def _lifecycle(
    world: World,
    handler_server: HandlerServer,
    first_delays: dict[str, float],
    pace: float = 0.0,
    record: str = "Always",
    **handler: Any,
) -> str:
    """A type with a create process and `go` (stopped -> going -> gone), whose pre, main and
    post handlers each add their name to the data, each call taking `pace` seconds; a
    handler named in `first_delays` takes that long on its first call. Returns `go`."""
    world.define_type()
    world.process("create", ["requested"], "creating", "stopped", trigger="create", record=record)
    go = world.process("go", ["stopped"], "going", "gone")
    for name, phase in (("pre", "pre"), ("main", "handler"), ("post", "post")):
        path = f"/{world.type}/{name}"
        reply = Reply({"data": {name: 1}}, delay=pace)
        first = Reply({"data": {name: 1}}, delay=first_delays.get(name, pace))
        handler_server.script(path, first, reply)
        world.handler(name, [go], handler_server.url(path), phase=phase, **handler)
    return go


@pytest.mark.parametrize("kill_in", ["pre", "main", "post"])
def test_a_killed_operator_resumes_every_run_exactly_once(
    resume_world: World,
    handler_server: HandlerServer,
    kubeconfig: Path,
    tmp_path: Path,
    kill_in: str,
) -> None:
    world = resume_world
    # The first call of `kill_in` hangs, so the operator is killed with the call in flight.
    go = _lifecycle(world, handler_server, {kill_in: 3.0}, timeoutSeconds=10)
    prefix = f"/{world.type}"

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


RUNS = 200


def _seed() -> int:
    given = os.environ.get(SEED_VARIABLE)
    seed = int(given) if given else random.randrange(1 << 32)
    print(f"{SEED_VARIABLE}={seed}")
    return seed


@pytest.mark.parametrize("record", ["Always", "OnFailure"])
def test_random_kills_during_many_concurrent_runs_lose_and_repeat_nothing(
    resume_world: World,
    handler_server: HandlerServer,
    kubeconfig: Path,
    tmp_path: Path,
    record: str,
) -> None:
    """SIGKILL at random moments while 200 objects are created and 200 runs are driven:
    every run ends Succeeded, with each of its transitions exactly once. With `record:
    OnFailure` the create runs leave no record: each still ran as one run (one name, one
    idempotency key in every call of its handler)."""
    world = resume_world
    names = [f"o{i:03d}" for i in range(RUNS)]
    witness = Witness(lambda: runs_seen(world, names), seed=_seed())
    rng = random.Random(witness.seed)
    go = _lifecycle(world, handler_server, {}, pace=0.05, record=record)
    prefix = f"/{world.type}"
    handler_server.script(f"{prefix}/made", Reply({"status": {"made": True}}, delay=0.05))
    world.handler("made", [f"{world.type}.create"], handler_server.url(f"{prefix}/made"))

    log = tmp_path / "operator.log"
    operator = OperatorProcess(kubeconfig, log, f"--namespace={NAMESPACE}").start()

    def kill_and_restart() -> OperatorProcess:
        # A random span, not a wait for something: the kill is to land wherever it lands.
        time.sleep(rng.uniform(0.2, 2.0))
        operator.kill()
        witness.kills += 1
        return OperatorProcess(kubeconfig, log, f"--namespace={NAMESPACE}").start()

    try:
        with witness:
            world.wait_plan(go, 3)
            for name in names:
                world.create(name)
            operator = kill_and_restart()
            wait_for(
                "every object created and stopped",
                lambda: all(world.status(n).get("state") == "stopped" for n in names),
                timeout=180,
            )
            runs = {name: world.run(go, name) for name in names}
            operator = kill_and_restart()
            operator = kill_and_restart()
            finals = {name: world.wait_run(run, timeout=180) for name, run in runs.items()}
    finally:
        operator.stop()

    with witness:
        for name in names:
            _check_object(world, handler_server, name, runs[name], finals[name], record)


def _check_object(
    world: World,
    handler_server: HandlerServer,
    name: str,
    run: str,
    final: dict[str, Any],
    record: str,
) -> None:
    """One object after the kills: its run ended once, each transition once, and its create
    run was one run (one record, or with none, one name and key in every handler call)."""
    assert final["phase"] == "Succeeded", (name, final)
    assert [(t["from"], t["to"]) for t in final["transitions"]] == [
        ("stopped", "going"),
        ("going", "gone"),
    ], (name, final)
    assert final["data"] == {"pre": 1, "main": 1, "post": 1}, (name, final)
    found = world.runs(name)  # the create run and this one, both adopted: none twice
    # By process, not by age: a create run's record lost to a kill is written from the
    # object's lastRun by the next run, after that run's own record was created.
    created = [r for r in found if r["spec"]["process"] == f"{world.type}.create"]
    ran = [r for r in found if r["metadata"]["name"] == run]
    assert len(ran) == 1, (name, found)
    assert len(found) == len(created) + 1, (name, found)
    if record == "Always":
        assert len(created) == 1, (name, found)
        assert [(t["from"], t["to"]) for t in created[0]["status"]["transitions"]] == [
            ("requested", "creating"),
            ("creating", "stopped"),
        ], (name, created[0])
    else:
        assert not created, (name, found)
        calls = [
            (c.event["run"]["name"], c.event["idempotencyKey"])
            for c in handler_server.calls(f"/{world.type}/made")
            if c.event["resource"]["metadata"]["name"] == name
        ]
        assert calls, name
        assert len(set(calls)) == 1, (name, calls)
    status = world.status(name)
    assert (status["state"], status["transitioning"], status["made"]) == ("gone", "no", True)


def test_a_parent_killed_after_handing_over_finishes_before_its_child_runs(
    resume_world: World, kubeconfig: Path, tmp_path: Path
) -> None:
    """The state an operator leaves when killed after a chaining run handed the object to
    its child and before it wrote its own record, set up by hand: the child was created
    first, so it is queued first. The parent must still end Chained, with its transition,
    and the child then run on."""
    world = resume_world
    world.define_type()
    go = world.process("go", ["stopped"], "going", "gone")
    nxt = world.process("next", ["going"], "nexting", "done")
    world.create("a")
    parent, child = "a.go-parent", "a.a-child"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    world.set_status(
        "a",
        {
            "state": "going",
            "transitioning": "yes",
            "process": nxt,
            "activeRun": child,
            "lastRun": {
                "name": parent,
                "process": go,
                "phase": "Succeeded",
                "exitReason": "Chained",
                "fromState": "stopped",
                "startTime": now,
                "endTime": now,
                "chainedTo": child,
            },
        },
    )
    for name, process, extra in (
        (child, nxt, {"trigger": "chain", "parent": parent}),
        (parent, go, {}),
    ):
        _create_run(world, name, process, "a", **extra)
    world.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        world.namespace,
        "processinstances",
        parent,
        {"status": {"phase": "Running", "attempts": 1}},
    )

    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", f"--namespace={NAMESPACE}")
    operator.start()
    try:
        first = world.wait_run(parent)
        second = world.wait_run(child)
    finally:
        operator.stop()
    assert (first["phase"], first["exitReason"], first["chainedTo"]) == (
        "Succeeded",
        "Chained",
        child,
    )
    assert [(t["from"], t["to"]) for t in first["transitions"]] == [("stopped", "going")]
    assert (second["phase"], second["exitReason"]) == ("Succeeded", "Done")
    assert [(t["from"], t["to"]) for t in second["transitions"]] == [
        ("going", "nexting"),
        ("nexting", "done"),
    ]
    assert world.status("a")["state"] == "done"


def test_a_run_killed_before_its_record_ends_before_the_next_run_takes_the_object(
    resume_world: World, handler_server: HandlerServer, kubeconfig: Path, tmp_path: Path
) -> None:
    """The state an operator leaves when killed after a run's done write and before its
    record, with the next run already asked for, set up by hand (a 35-minute soak met it):
    the next run is queued first. The killed run must still end Done from the object's
    lastRun, with each transition once and no handler called again, and the next run go
    after it. And a run whose record says it took an object that was let go since (b) is
    canceled, not run a second time."""
    world = resume_world
    world.define_type()
    poke = world.process("poke", ["stopped"], "poking", "stopped")
    path = f"/{world.type}/work"
    handler_server.script(path, Reply({"data": {"work": 1}}))
    world.handler("work", [poke], handler_server.url(path))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    took = {"field": "state", "from": "stopped", "to": "poking", "time": now}
    # The killed run sorts after the next one by name, and is created after it.
    killed, following, lost = "a.poke-b", "a.poke-a", "b.poke-a"
    for obj, last in (("a", killed), ("b", None)):
        world.create(obj)
        status: dict[str, Any] = {"state": "stopped", "transitioning": "no"}
        if last:
            status["lastRun"] = {
                "name": last,
                "process": poke,
                "phase": "Succeeded",
                "exitReason": "Done",
                "fromState": "stopped",
                "startTime": now,
                "endTime": now,
            }
        world.set_status(obj, status)
    for name in (following, killed, lost):
        _create_run(world, name, poke, name.partition(".")[0])
    for name in (killed, lost):
        world.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            world.namespace,
            "processinstances",
            name,
            {
                "status": {
                    "phase": "Retrying",
                    "attempts": 2,
                    "startTime": now,
                    "transitions": [took],
                }
            },
        )

    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", f"--namespace={NAMESPACE}")
    operator.start()
    try:
        first = world.wait_run(killed)
        second = world.wait_run(following)
        canceled = world.wait_run(lost)
    finally:
        operator.stop()
    assert (first["phase"], first["exitReason"]) == ("Succeeded", "Done"), first
    assert [(t["from"], t["to"]) for t in first["transitions"]] == [
        ("stopped", "poking"),
        ("poking", "stopped"),
    ]
    assert (second["phase"], second["exitReason"]) == ("Succeeded", "Done"), second
    assert [(t["from"], t["to"]) for t in second["transitions"]] == [
        ("stopped", "poking"),
        ("poking", "stopped"),
    ]
    calls = handler_server.calls(path)
    assert [c.event["run"]["name"] for c in calls] == [following], "a process ran twice"
    assert world.status("a")["lastRun"]["name"] == following

    assert (canceled["phase"], canceled["exitReason"]) == ("Canceled", "Canceled"), canceled
    assert "not run twice" in canceled["message"]
    assert world.status("b")["state"] == "stopped"


def _create_run(world: World, name: str, process: str, obj: str, **spec: Any) -> None:
    """A ProcessInstance named by the test, for hand-built states."""
    world.run(process, obj, name=name, **spec)
