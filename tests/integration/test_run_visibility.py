"""What a user sees of a run while it runs and after it ends (issue 16, findings 2-4, 9):
its phase says `Running` while a handler works, every failed attempt leaves a
`HandlerFailed` Event, the run's own Event survives a kill, and a write the API server
refuses is read from what the server holds, not from the words of its message."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.world import TEST_GROUP, World, events_of, wait_for


def _phase(world: World, run: str) -> str | None:
    return (world.pi(run).get("status") or {}).get("phase")


def test_a_run_shows_running_while_its_handler_works_also_after_waiting(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested", "gone"], "going", "gone")
    path = f"/{world.type}/slow"
    handler_server.script(path, Reply({}, delay=3.0))
    world.handler("slow", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    first = world.run(go, "a")
    wait_for(f"{first} to show Running", lambda: _phase(world, first) == "Running")
    assert world.status("a")["activeRun"] == first
    second = world.run(go, "a")
    wait_for(f"{second} to wait", lambda: _phase(world, second) == "Pending")
    assert world.wait_run(first)["phase"] == "Succeeded"
    # The second run had been Pending ("waiting for <first> to end"): once it takes the
    # object and its handler works, it says so.
    seen = wait_for(
        f"{second} to show Running",
        lambda: (
            (s := world.pi(second).get("status") or {}).get("phase") in ("Running", "Succeeded")
            and s
        ),
    )
    assert (seen["phase"], seen.get("message", "")) == ("Running", ""), seen
    assert world.wait_run(second)["phase"] == "Succeeded"


@pytest.mark.parametrize(("retry_limit", "failures"), [(0, 1), (1, 2)])
def test_every_failed_attempt_leaves_a_handler_failed_event_the_last_included(
    world: World, handler_server: HandlerServer, kubectl: Kubectl, retry_limit: int, failures: int
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/down"
    handler_server.script(path, Reply({"error": "down"}))
    world.handler("down", [go], handler_server.url(path), retryLimit=retry_limit)
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    ended = world.wait_run(world.run(go, "a"))
    assert (ended["phase"], ended["exitReason"]) == ("Failed", "RetriesExhausted"), ended
    assert len(handler_server.calls(path)) == failures
    wait_for("the ProcessFailed Event", lambda: events_of(kubectl, world, "a", "ProcessFailed"))
    seen = wait_for(
        f"{failures} HandlerFailed Events",
        lambda: len(e := events_of(kubectl, world, "a", "HandlerFailed")) >= failures and e,
    )
    assert [e["note"].rpartition("; ")[2] for e in seen][-1] == "the last attempt", seen
    assert len(seen) == failures, [e["note"] for e in seen]


def test_a_run_that_ended_before_a_kill_posts_its_event_on_resume(
    world: World, kubectl: Kubectl
) -> None:
    """The state a kill leaves just after a run's last write to its object: the object's
    lastRun says the run ended, its record does not. Resuming, the run ends from lastRun and
    its Event goes out (once: it has a name of its own)."""
    world.define_type()
    poke = world.process("poke", ["stopped"], "poking", "stopped")
    world.create("a")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    name = "a.poke-killed"
    last = {
        "name": name,
        "process": poke,
        "phase": "Succeeded",
        "exitReason": "Done",
        "fromState": "stopped",
        "startTime": now,
        "endTime": now,
    }
    world.set_status("a", {"state": "stopped", "transitioning": "no", "lastRun": last})
    world.run(poke, "a", name=name)
    ended = world.wait_run(name)
    assert (ended["phase"], ended["exitReason"]) == ("Succeeded", "Done"), ended
    done = wait_for("the run's Done Event", lambda: events_of(kubectl, world, "a", "Done"))
    assert [e["note"] for e in done] == [f"{poke}: stopped -> poking -> stopped ({name})"]


@pytest.fixture
def refusing_policy(world: World, kubectl: Kubectl) -> Iterator[str]:
    """A ValidatingAdmissionPolicy that refuses `status.refused` on the world's objects,
    with a message that has the word "test" in it."""
    name = f"refuse-{world.type}"
    kubectl.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [TEST_GROUP],
                            "apiVersions": ["*"],
                            "operations": ["UPDATE"],
                            "resources": [f"{world.plural}/status"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "!has(object.status.refused)",
                        "message": "the test policy refuses status.refused",
                    }
                ],
            },
        }
    )
    kubectl.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": name, "validationActions": ["Deny"]},
        }
    )
    try:
        yield name
    finally:
        kubectl.run("delete", "validatingadmissionpolicybinding", name, check=False)
        kubectl.run("delete", "validatingadmissionpolicy", name, check=False)


def _refused(world: World, obj: str) -> bool:
    try:
        world.set_status(obj, {"refused": True})
    except ApiException as error:
        return error.status == 422
    return False


def test_a_refused_write_is_read_from_the_object_not_from_the_message(
    world: World, handler_server: HandlerServer, refusing_policy: str
) -> None:
    """The API server refuses the run's done write (422, "test" in its message) while the
    run still holds the object: the run fails saying so and lets the object go, rather
    than taking the 422 for a lost object and ending Canceled."""
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/writes"
    handler_server.script(path, Reply({"status": {"refused": True}}))
    world.handler("writes", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("probe")
    world.wait_state("probe", "requested")
    wait_for("the policy to be in force", lambda: _refused(world, "probe"))
    world.create("a")
    world.wait_state("a", "requested")
    ended = world.wait_run(world.run(go, "a"))
    assert (ended["phase"], ended["exitReason"]) == ("Failed", "Invalid"), ended
    assert "the test policy refuses status.refused" in ended["message"], ended
    status: dict[str, Any] = world.status("a")
    assert (status["state"], status["transitioning"]) == ("going", "error"), status
    assert "activeRun" not in status, status
    assert "refused" not in status, status
