"""A type with Cattle's standard processes, from one short ResourceDefinition."""

from __future__ import annotations

from typing import Any

from kattle.api.common import GROUP, VERSION
from tests.support.handlers import HandlerServer
from tests.support.world import World, wait_for


def definitions(world: World) -> dict[str, dict[str, Any]]:
    items = world.custom.list_cluster_custom_object(GROUP, VERSION, "processdefinitions")["items"]
    return {p["metadata"]["name"]: p for p in items if p["spec"]["resourceType"] == world.type}


def condition(world: World, type_: str) -> dict[str, Any] | None:
    rd = world.custom.get_cluster_custom_object(GROUP, VERSION, "resourcedefinitions", world.type)
    conditions = (rd.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), None)


def test_a_type_lives_its_cattle_lifecycle_from_the_standard_set(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type(standardProcesses={"verbs": {"activate": "start"}})
    t = world.type
    path = f"/{t}/ending"
    world.handler("ending", [f"{t}.remove", f"{t}.purge"], handler_server.url(path))
    wait_for("the standard processes", lambda: len(definitions(world)) == 6)
    found = definitions(world)
    assert sorted(found) == sorted(
        f"{t}.{v}" for v in ("create", "start", "deactivate", "update", "remove", "purge")
    )
    rd = world.custom.get_cluster_custom_object(GROUP, VERSION, "resourcedefinitions", t)
    owner = found[f"{t}.update"]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("ResourceDefinition", rd["metadata"]["uid"])
    wait_for(
        "ProcessesGenerated",
        lambda: (condition(world, "ProcessesGenerated") or {}).get("status") == "True",
    )

    world.create("a")
    world.wait_state("a", "inactive")  # create: requested -> registering -> inactive
    for process, state in (("start", "active"), ("update", "active"), ("deactivate", "inactive")):
        log = world.wait_run(world.run(f"{t}.{process}", "a"))
        assert log["phase"] == "Succeeded", log
        assert world.wait_state("a", state)
    [update] = [r for r in world.runs("a") if r["spec"]["process"] == f"{t}.update"]
    assert [(x["from"], x["to"]) for x in update["status"]["transitions"]] == [
        ("active", "updating-active"),
        ("updating-active", "active"),
    ]
    world.delete("a")  # remove, then purge, then the object goes
    wait_for("a to go", lambda: world.get("a") is None)
    called = [(c.event["process"], c.event["transitioning"]) for c in handler_server.calls(path)]
    assert called == [(f"{t}.remove", "removing"), (f"{t}.purge", "purging")]


def test_excluding_a_verb_prunes_its_definition_and_a_deleted_one_comes_back(
    world: World,
) -> None:
    world.define_type(standardProcesses={"exclude": ["purge"]})
    t = world.type
    wait_for("the standard processes", lambda: len(definitions(world)) == 5)
    world.custom.patch_cluster_custom_object(
        GROUP,
        VERSION,
        "resourcedefinitions",
        t,
        {"spec": {"standardProcesses": {"exclude": ["purge", "update"]}}},
    )
    wait_for(f"{t}.update pruned", lambda: f"{t}.update" not in definitions(world))
    world.custom.delete_cluster_custom_object(GROUP, VERSION, "processdefinitions", f"{t}.remove")
    wait_for(f"{t}.remove back", lambda: f"{t}.remove" in definitions(world))


def test_a_definition_written_by_hand_is_never_taken_over(world: World) -> None:
    world.define_type()
    t = world.type
    mine = world.process("deactivate", ["active"], "winding-down", "inactive")
    world.custom.patch_cluster_custom_object(
        GROUP, VERSION, "resourcedefinitions", t, {"spec": {"standardProcesses": {}}}
    )
    found = wait_for(
        "a Conflict",
        lambda: (c := condition(world, "ProcessesGenerated")) and c["status"] == "False" and c,
    )
    assert found["reason"] == "Conflict"
    assert f"ProcessDefinition {mine} exists and was not generated for {t}" in found["message"]
    assert definitions(world)[mine]["spec"]["transitioning"] == "winding-down"
    assert len(definitions(world)) == 6  # the other five are generated
    world.custom.delete_cluster_custom_object(GROUP, VERSION, "processdefinitions", mine)
    wait_for(
        "the generated one in its place",
        lambda: (
            definitions(world).get(mine, {}).get("spec", {}).get("transitioning") == "deactivating"
        ),
    )
