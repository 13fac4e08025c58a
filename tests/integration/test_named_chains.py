"""A run that names its own chain (`spec.chain`, Cattle's chainProcess): the chain runs
once the run succeeds, also when the run finds its object done already; the API server
refuses a chain of another type, and the operator one with no definition."""

from __future__ import annotations

import uuid

import yaml

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.world import GROUP, VERSION, World


def _deactivate_then_remove(world: World, handler_server: HandlerServer) -> tuple[str, str]:
    world.define_type(initial="active")
    deactivate = world.process("deactivate", ["active"], "deactivating", "inactive")
    remove = world.process("remove", ["inactive"], "removing", "removed")
    for process, name in ((deactivate, "detach"), (remove, "wipe")):
        path = f"/{world.type}/{name}"
        handler_server.script(path, Reply({"data": {name: 1}}))
        world.handler(name, [process], handler_server.url(path))
        world.wait_plan(process, 1)
    return deactivate, remove


def test_a_run_that_names_a_chain_ends_done_and_hands_its_object_to_it(
    world: World, handler_server: HandlerServer
) -> None:
    deactivate, remove = _deactivate_then_remove(world, handler_server)
    world.create("a")
    world.wait_state("a", "active")
    run = world.run(deactivate, "a", {"why": "test"}, chain=remove)
    first = world.wait_run(run)
    assert (first["phase"], first["exitReason"]) == ("Succeeded", "Chained"), first
    assert [(t["from"], t["to"]) for t in first["transitions"]] == [
        ("active", "deactivating"),
        ("deactivating", "inactive"),
    ]
    child = first["chainedTo"]
    second = world.wait_run(child)
    assert (second["phase"], second["exitReason"]) == ("Succeeded", "Done"), second
    assert [(t["from"], t["to"]) for t in second["transitions"]] == [
        ("inactive", "removing"),
        ("removing", "removed"),
    ]
    # The chained run has its parent's data, its handler's reply included.
    assert second["data"] == {"why": "test", "detach": 1, "wipe": 1}
    spec = world.custom.get_namespaced_custom_object(
        GROUP, VERSION, world.namespace, "processinstances", child
    )["spec"]
    assert (spec["trigger"], spec["parent"]) == ("chain", run)
    assert world.status("a")["state"] == "removed"


def test_a_run_that_finds_its_object_done_still_runs_the_chain_it_names(
    world: World, handler_server: HandlerServer
) -> None:
    deactivate, remove = _deactivate_then_remove(world, handler_server)
    world.create("a")
    world.wait_state("a", "active")
    world.wait_run(world.run(deactivate, "a"))
    run = world.run(deactivate, "a", chain=remove)
    first = world.wait_run(run)
    assert (first["phase"], first["exitReason"]) == ("Succeeded", "Chained"), first
    assert first["message"] == f"already inactive; chained {remove} ({first['chainedTo']})"
    assert first.get("transitions", []) == []
    second = world.wait_run(first["chainedTo"])
    assert (second["phase"], second["exitReason"]) == ("Succeeded", "Done"), second
    assert world.status("a")["state"] == "removed"
    detached = handler_server.calls(f"/{world.type}/detach")
    assert len(detached) == 1, "the run that found its object done called its handler"


def test_a_chain_of_another_type_is_refused_and_one_without_a_definition_fails(
    world: World, handler_server: HandlerServer, kubectl: Kubectl
) -> None:
    deactivate, _ = _deactivate_then_remove(world, handler_server)
    world.create("a")
    world.wait_state("a", "active")
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ProcessInstance",
        "metadata": {"name": f"a.other-{uuid.uuid4().hex[:5]}", "namespace": world.namespace},
        "spec": {"process": deactivate, "resource": {"name": "a"}, "chain": "volume.remove"},
    }
    refused = kubectl.run("create", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
    assert refused.returncode != 0
    assert "chain must name a process of the same type as process" in refused.stderr

    run = world.run(deactivate, "a", chain=f"{world.type}.nowhere")
    final = world.wait_run(run)
    assert (final["phase"], final["exitReason"]) == ("Failed", "Invalid"), final
    assert (
        f"the chain it names, {world.type}.nowhere, has no ProcessDefinition" in (final["message"])
    )
    assert world.status("a")["state"] == "active"
    assert handler_server.calls(f"/{world.type}/detach") == []
