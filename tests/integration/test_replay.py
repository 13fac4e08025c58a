"""Replay, end to end: `kattle retry` (the `kattle.dev/replay` annotation) starts a failed run
again from the step where it stopped, or says why not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kattle.api.common import GROUP, VERSION
from tests.support.handlers import HandlerServer, Reply
from tests.support.world import World, wait_for

BIN = Path(sys.executable).parent


def kattle(kubeconfig: Path, world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kattle"), *args, f"--kubeconfig={kubeconfig}", "-n", world.namespace],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_failed_run_is_replayed_from_the_step_where_it_stopped(
    world: World, handler_server: HandlerServer, kubeconfig: Path
) -> None:
    world.define_type()
    world.process("create", ["requested"], "creating", "ready", trigger="create")
    go = world.process("go", ["ready"], "going", "gone")
    first, second = f"/{world.type}/first", f"/{world.type}/second"
    world.handler("first", [go], handler_server.url(first), priority=1)
    world.handler("second", [go], handler_server.url(second), priority=2, retryLimit=0)
    world.wait_plan(go, 2)
    handler_server.script(first, Reply({"data": {"disk": "d-1"}, "status": {"disk": "d-1"}}))
    handler_server.script(second, Reply({"error": "no room"}), Reply({"data": {"booted": True}}))
    world.create("a")
    world.wait_state("a", "ready")
    failed = world.run(go, "a")
    assert world.wait_run(failed)["exitReason"] == "RetriesExhausted"

    retried = kattle(kubeconfig, world, "retry", f"pi/{failed}", "--wait")
    assert retried.returncode == 0, retried.stderr + retried.stdout
    replay = world.pi(failed)["status"]["replay"]["run"]
    assert f"processinstance.{GROUP}/{replay} replays {failed}" in retried.stdout
    assert "Succeeded (Done)" in retried.stdout
    log = world.pi(replay)
    assert (log["spec"]["trigger"], log["spec"]["parent"]) == ("replay", failed)
    calls = [(c["handler"], c["outcome"]) for c in log["status"]["handlerCalls"]]
    assert calls == [(f"{world.type}-first", "Skipped"), (f"{world.type}-second", "Succeeded")]
    assert log["status"]["data"] == {"disk": "d-1", "booted": True}
    # The first handler was called once in all; the second step was called again, with
    # the first one's data, and what the first one asked to write was written at the end.
    assert len(handler_server.calls(first)) == 1
    assert handler_server.calls(second)[-1].event["data"] == {"disk": "d-1"}
    status = world.wait_state("a", "gone")
    assert status["disk"] == "d-1"
    assert status["lastRun"]["name"] == replay

    again = kattle(kubeconfig, world, "retry", failed)
    assert again.returncode == 1
    assert f"{failed} not replayed: the object has moved on" in again.stderr
    answer = world.pi(failed)["status"]["replay"]
    assert answer["refused"].startswith("the object has moved on"), answer
    assert "run" not in answer


def test_a_replay_is_refused_for_a_run_that_did_not_fail(world: World, kubeconfig: Path) -> None:
    world.define_type()
    world.process("create", ["requested"], "creating", "ready", trigger="create")
    world.create("a")
    world.wait_state("a", "ready")
    # A create run's record is written just after the object's done state: wait for it.
    [created] = world.ended_runs("a", 1)
    name = created["metadata"]["name"]
    # The annotation alone asks, as `kubectl annotate` would.
    world.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        world.namespace,
        "processinstances",
        name,
        {"metadata": {"annotations": {"kattle.dev/replay": "by-hand"}}},
    )
    answer = wait_for(
        "the operator's answer",
        lambda: (r := (world.pi(name).get("status") or {}).get("replay")) and r,
    )
    assert answer["requested"] == "by-hand"
    assert answer["refused"].startswith(f"{name} ended Succeeded (Done): only a run that failed")
    assert "run" not in answer
