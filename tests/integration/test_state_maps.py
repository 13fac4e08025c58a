"""State maps against the real API server: one process, a way through per start state."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.world import World

UPDATE_MAP = [
    {"start": "inactive", "transitioning": "updating-inactive", "done": "inactive"},
    {"start": "active", "transitioning": "updating-active", "done": "active"},
]


def test_update_returns_each_object_to_where_it_started(
    world: World, handler_server: HandlerServer, kubectl: Kubectl
) -> None:
    world.define_type(initial="inactive")
    world.process("activate", ["inactive"], "activating", "active")
    update = world.process_of("update", stateMap=UPDATE_MAP)
    path = f"/{world.type}/update"
    world.handler("update", [update], handler_server.url(path))
    world.wait_plan(update, 1)
    world.create("idle")
    world.create("busy")
    world.wait_run(world.run(f"{world.type}.activate", "busy"))

    for name, state in (("idle", "inactive"), ("busy", "active")):
        log = world.wait_run(world.run(update, name))
        assert log["phase"] == "Succeeded", log
        assert [(t["from"], t["to"]) for t in log["transitions"]] == [
            (state, f"updating-{state}"),
            (f"updating-{state}", state),
        ]
        assert world.wait_state(name, state)["lastRun"]["process"] == update
    # Each handler call was told the way its run goes.
    told = [(c.event["transitioning"], c.event["done"]) for c in handler_server.calls(path)]
    assert told == [("updating-inactive", "inactive"), ("updating-active", "active")]
    # `kubectl get pd -o wide` shows the map (Start, Transitioning and Done are empty).
    wide = kubectl.run("get", "pd", update, "-o", "wide").stdout
    assert '"transitioning":"updating-active"' in wide.replace(" ", ""), wide


def test_a_failed_run_left_in_a_mapped_state_is_resumed_along_its_way(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type(initial="active")
    update = world.process_of("update", stateMap=UPDATE_MAP)
    path = f"/{world.type}/update"
    world.handler("update", [update], handler_server.url(path), retryLimit=0)
    world.wait_plan(update, 1)
    handler_server.script(path, Reply({"error": "not now"}), Reply({}))
    world.create("a")
    failed = world.wait_run(world.run(update, "a"))
    assert failed["phase"] == "Failed", failed
    assert world.status("a")["state"] == "updating-active"

    log = world.wait_run(world.run(update, "a"))
    assert log["phase"] == "Succeeded", log
    assert world.wait_state("a", "active")["transitioning"] == "no"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"stateMap": UPDATE_MAP, "start": ["inactive"], "transitioning": "x", "done": "y"},
            "set either start, transitioning and done, or stateMap (not both)",
        ),
        ({"start": ["inactive"]}, "set either start, transitioning and done, or stateMap"),
        (
            {"stateMap": [*UPDATE_MAP, {"start": "active", "transitioning": "t", "done": "d"}]},
            "each start state and each transitioning state appears once in the stateMap",
        ),
        (
            {"stateMap": [{"start": "a", "transitioning": "b", "done": "c"},
                          {"start": "b", "transitioning": "e", "done": "a"}]},
            "a start state of the stateMap must not be one of its transitioning states",
        ),
        (
            {"stateMap": [{"start": "a", "transitioning": "b", "done": "b"}]},
            "done must differ from transitioning",
        ),
    ],
)  # fmt: skip
def test_the_api_server_refuses_a_map_that_cannot_tell_the_way(
    world: World, spec: dict[str, object], message: str
) -> None:
    with pytest.raises(ApiException) as refused:
        world.process_of("broken", **spec)
    assert refused.value.status == 422
    assert message in str(refused.value.body)
