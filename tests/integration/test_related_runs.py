"""Runs on related objects, end to end: an instance's start activates its volumes (its
children, by ownerReference) and its nic (named in its spec) first, waits for them, and fails
when one fails; a run that would wait for its own ancestor is refused, not deadlocked."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kattle.machine.names import owner_reference
from kattle.sdk import HandlerApp, ProcessEvent, ProcessReply, RunRequest
from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.sdk_server import serving
from tests.support.world import World, wait_for, world_in


@pytest.fixture
def volumes(world: World) -> Iterator[World]:
    """A second type in the same namespace: the instance's volumes."""
    other = World(world.custom.api_client, world.namespace)
    try:
        yield other
    finally:
        other.cleanup()


def _child(volumes: World, name: str, parent: dict[str, Any]) -> None:
    volumes.custom.create_namespaced_custom_object(
        "test.kattle.dev",
        "v1",
        volumes.namespace,
        volumes.plural,
        {
            "apiVersion": "test.kattle.dev/v1",
            "kind": volumes.kind,
            "metadata": {"name": name, "ownerReferences": [owner_reference(parent)]},
            "spec": {},
        },
    )


def _lifecycle(
    world: World, volumes: World, handler_server: HandlerServer, **step: Any
) -> tuple[str, str, str]:
    """instance.start activates the instance's volumes and its nic (a volume too, named in
    spec.nic), then calls the instance's handler."""
    volumes.define_type(initial="inactive")
    activate = volumes.process("activate", ["inactive"], "activating", "active")
    world.define_type(
        initial="stopped",
        relations=[
            {"name": "volumes", "type": volumes.type},
            {"name": "nic", "type": volumes.type, "kind": "reference", "field": "nic"},
        ],
    )
    start = world.process(
        "start",
        ["stopped"],
        "starting",
        "running",
        relatedRuns=[
            {"relation": "volumes", "process": activate, **step},
            {"relation": "nic", "process": activate, **step},
        ],
    )
    volumes.handler("disk", [activate], handler_server.url(f"/{volumes.type}"), retryLimit=0)
    world.handler("vm", [start], handler_server.url(f"/{world.type}"), retryLimit=0)
    world.wait_plan(start, 1)
    volumes.wait_plan(activate, 1)
    return start, activate, f"/{volumes.type}"


def test_a_start_activates_its_volumes_and_nic_first_and_lists_them(
    world: World, volumes: World, handler_server: HandlerServer, kubeconfig: Path
) -> None:
    start, activate, _ = _lifecycle(world, volumes, handler_server)
    web = world.create("web", {"nic": "eth0"})
    for name in ("disk-a", "disk-b"):
        _child(volumes, name, web)
    volumes.create("eth0")
    volumes.create("stray")  # not related: never run
    volumes.wait_state("eth0", "inactive")
    # Already active: its run ends AlreadyDone, and counts as done.
    volumes.custom.patch_namespaced_custom_object_status(
        "test.kattle.dev",
        "v1",
        volumes.namespace,
        volumes.plural,
        "disk-b",
        {"status": {"state": "active"}},
    )
    world.wait_state("web", "stopped")

    log = world.wait_run(world.run(start, "web"))
    assert (log["phase"], log["exitReason"]) == ("Succeeded", "Done"), log
    children = {c["resource"]: c for c in log["children"]}
    assert set(children) == {"disk-a", "disk-b", "eth0"}, log["children"]
    assert {c["resource"]: c["exitReason"] for c in log["children"]} == {
        "disk-a": "Done",
        "disk-b": "AlreadyDone",
        "eth0": "Done",
    }
    assert {c["relation"] for c in log["children"]} == {"volumes", "nic"}
    for name in ("disk-a", "disk-b", "eth0"):
        assert volumes.status(name)["state"] == "active"
    assert volumes.status("stray").get("state", "inactive") == "inactive"
    # The instance's handler was called after every related run had ended.
    called = log["handlerCalls"][0]["start"]
    assert all(c["endTime"] <= called for c in log["children"]), (called, log["children"])
    child = volumes.pi(children["disk-a"]["name"])["spec"]
    assert child["trigger"] == "related"
    assert child["parent"] == log_name(world, start, "web")
    assert child["ancestry"] == [{"run": child["parent"], "process": start, "resource": "web"}]
    assert activate == child["process"]

    # As a user sees it: the object with its related objects, and the run with its children.
    tree = _kattle(kubeconfig, world, "tree", f"{world.plural}/web")
    assert tree.splitlines()[0].split() == ["NAME", "STATE", "PROCESS", "TRANSITIONING"]
    rows = [line.split() for line in tree.splitlines()[1:]]
    assert rows[0][:2] == [f"{world.kind}/web", "running"], tree
    assert [r[1:3] for r in rows[1:]] == [
        ["volumes:", f"{volumes.kind}/disk-a"],
        ["volumes:", f"{volumes.kind}/disk-b"],
        ["nic:", f"{volumes.kind}/eth0"],
    ], tree
    assert all(r[3] == "active" for r in rows[1:]), tree
    history = _kattle(kubeconfig, world, "history", f"{world.plural}/web")
    assert f"└─ {children['eth0']['name']}" in history, history


def _kattle(kubeconfig: Path, world: World, *args: str) -> str:
    kattle = Path(sys.executable).parent / "kattle"
    result = subprocess.run(
        [str(kattle), *args, "-n", world.namespace, f"--kubeconfig={kubeconfig}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def log_name(world: World, process: str, obj: str) -> str:
    (run,) = [r for r in world.runs(obj) if r["spec"]["process"] == process]
    return str(run["metadata"]["name"])


def test_a_failing_volume_fails_the_step_which_is_retried_then_fails_the_start(
    world: World, volumes: World, handler_server: HandlerServer
) -> None:
    start, _, disk_path = _lifecycle(world, volumes, handler_server, retryLimit=1)
    handler_server.script(disk_path, Reply({"error": "disk full"}), Reply({"error": "disk full"}))
    web = world.create("web")
    _child(volumes, "disk-a", web)
    volumes.wait_state("disk-a", "inactive")
    world.wait_state("web", "stopped")
    log = world.wait_run(world.run(start, "web"), timeout=60)
    assert (log["phase"], log["exitReason"]) == ("Failed", "RetriesExhausted"), log
    assert "disk full" in log["message"]
    assert "relatedRuns[0]" in log["message"]
    # Two attempts, two runs on the volume: the step was retried with new runs.
    assert [c["attempt"] for c in log["children"]] == [1, 2]
    assert [c["exitReason"] for c in log["children"]] == ["RetriesExhausted", "RetriesExhausted"]
    status = world.status("web")
    assert (status["state"], status["transitioning"]) == ("starting", "error")
    assert not handler_server.calls(f"/{world.type}"), "the instance handler ran after a failure"

    # Fixed: the same process, from where the failure left the object, now succeeds.
    handler_server.script(disk_path, Reply({}))
    again = world.wait_run(world.run(start, "web"), timeout=60)
    assert (again["phase"], again["exitReason"]) == ("Succeeded", "Done"), again
    assert volumes.status("disk-a")["state"] == "active"


def test_a_related_run_on_an_object_its_ancestor_holds_is_refused_naming_the_chain(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type(
        initial="idle",
        relations=[{"name": "peer", "type": world.type, "kind": "reference", "field": "peer"}],
    )
    check = world.process("check", ["idle"], "checking", "checked")
    link = world.process(
        "link", ["idle"], "linking", "linked", relatedRuns=[{"relation": "peer", "process": check}]
    )
    world.create("a", {"peer": "b"})
    world.create("b")
    world.create("loop", {"peer": "loop"})
    world.wait_state("loop", "idle")
    world.wait_state("b", "idle")

    fine = world.wait_run(world.run(link, "a"))
    assert (fine["phase"], fine["exitReason"]) == ("Succeeded", "Done"), fine
    assert world.status("b")["state"] == "checked"

    refused = world.wait_run(world.run(link, "loop"), timeout=15)
    assert (refused["phase"], refused["exitReason"]) == ("Failed", "Cycle"), refused
    run = log_name(world, link, "loop")
    assert refused["message"] == (
        f"relatedRuns[0] ({check} on peer): {link} on loop ({run}) -> {check} on loop: loop is "
        f"held by {run}, which waits for this run; refused rather than deadlocked"
    )
    assert refused["children"] == []
    status = world.status("loop")
    assert (status["state"], status["transitioning"]) == ("linking", "error")


def test_a_declared_cycle_and_an_unknown_relation_type_are_reported(world: World) -> None:
    world.define_type(relations=[{"name": "ghosts", "type": "no-such-type"}])
    again = world.process(
        "again",
        ["requested"],
        "againing",
        "done",
        relatedRuns=[{"relation": "selves", "process": f"{world.type}.again"}],
    )

    def conditions(plural: str, name: str) -> dict[str, dict[str, Any]]:
        body = world.custom.get_cluster_custom_object("kattle.dev", "v1alpha1", plural, name)
        return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}

    related = wait_for(
        "RelationsResolved=False",
        lambda: (
            (c := conditions("resourcedefinitions", world.type).get("RelationsResolved"))
            and c["status"] == "False"
            and c
        ),
    )
    assert related["message"] == (
        "relation ghosts: resource type 'no-such-type' has no ResourceDefinition"
    )
    ready = wait_for(
        "the process's Ready=False",
        lambda: (
            (c := conditions("processdefinitions", again).get("Ready"))
            and c["status"] == "False"
            and c
        ),
    )
    assert f"{world.type} has no relation 'selves'" in ready["message"]
    assert f"related runs form a cycle, {again} -> {again}" in ready["message"]


def test_a_handler_asks_for_runs_on_related_objects_and_sees_their_outcome(
    world: World, volumes: World
) -> None:
    """Through the SDK: the instance's handler asks for its volumes' activation, the next
    handler sees the outcome in the process data; asked again (the handler asks to be
    called again, and asks for the same runs) the runs are found, not started twice."""
    volumes.define_type(initial="inactive")
    activate = volumes.process("activate", ["inactive"], "activating", "active")
    world.define_type(initial="stopped", relations=[{"name": "disks", "type": volumes.type}])
    start = world.process("start", ["stopped"], "starting", "running")
    app = HandlerApp()
    seen: list[dict[str, Any]] = []

    @app.on(activate)
    async def attach(event: ProcessEvent) -> ProcessReply:
        return ProcessReply(data={"device": f"/dev/{event.resource['metadata']['name']}"})

    @app.on(start)
    async def ask(event: ProcessEvent) -> ProcessReply:
        if event.handler.endswith("-check"):
            seen.append(event.data)
            return ProcessReply()
        wanted = [
            RunRequest(process=activate, resource=n, data={"by": "ask"}) for n in ("d1", "d2")
        ]
        # Asked again when called again (here, at once): the runs are found, not restarted.
        again = 0 if event.attempt == 1 else None
        return ProcessReply(runs=wanted, retry_after_seconds=again)

    with serving(app) as url:
        volumes.handler("attach", [activate], f"{url}/attach", retryLimit=0)
        world.handler("ask", [start], f"{url}/ask", retryLimit=1, priority=1)
        world.handler("check", [start], f"{url}/ask", retryLimit=0, priority=2)
        world.wait_plan(start, 2)
        volumes.wait_plan(activate, 1)
        world.create("web")
        volumes.create("d1")
        volumes.create("d2")
        volumes.wait_state("d2", "inactive")
        world.wait_state("web", "stopped")
        log = world.wait_run(world.run(start, "web"))
    assert (log["phase"], log["exitReason"]) == ("Succeeded", "Done"), log
    assert {c["resource"]: c["exitReason"] for c in log["children"]} == {"d1": "Done", "d2": "Done"}
    asks = [c["outcome"] for c in log["handlerCalls"] if c["handler"].endswith("-ask")]
    assert asks == ["RetryAfter", "Succeeded"], log["handlerCalls"]
    (data,) = seen
    outcomes = {o["resource"]: o for o in data["runs"].values()}
    assert outcomes["d1"]["phase"] == "Succeeded"
    assert outcomes["d2"]["data"] == {"by": "ask", "device": "/dev/d2"}
    child = volumes.pi(log["children"][0]["name"])
    assert child["spec"]["data"] == {"by": "ask"}
    assert child["spec"]["trigger"] == "related"
    for name in ("d1", "d2"):
        assert volumes.status(name)["state"] == "active"
        assert len(volumes.runs(name)) == 1, "a requested run was started twice"


KILL_NAMESPACE = "kattle-related-kills"


def test_sigkills_before_during_and_after_the_related_runs_start_and_repeat_nothing(
    api_client: Any,
    operator: Any,
    kubectl: Kubectl,
    handler_server: HandlerServer,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    """An operator of its own, SIGKILLed at random moments while parents wait for their
    related runs: every parent ends Done, no related run is started twice, and no object
    goes through a transition twice."""
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    with (
        world_in(api_client, kubectl, KILL_NAMESPACE) as world,
        world_in(api_client, kubectl, KILL_NAMESPACE) as volumes,
    ):
        start, activate, disk_path = _lifecycle(world, volumes, handler_server, maxConcurrent=2)
        handler_server.script(disk_path, Reply({"data": {"attached": True}}, delay=0.2))
        parents = [f"p{i}" for i in range(6)]
        for parent in parents:
            body = world.create(parent)
            for disk in range(3):
                _child(volumes, f"{parent}-d{disk}", body)
        log = tmp_path / "operator.log"
        running = OperatorProcess(kubeconfig, log, f"--namespace={KILL_NAMESPACE}").start()
        kills = 0
        try:
            for parent in parents:
                world.wait_state(parent, "stopped")
            runs = {parent: world.run(start, parent) for parent in parents}
            for _ in range(3):
                time.sleep(rng.uniform(0.1, 1.5))
                running.kill()
                kills += 1
                running = OperatorProcess(kubeconfig, log, f"--namespace={KILL_NAMESPACE}").start()
            finals = {p: world.wait_run(r, timeout=120) for p, r in runs.items()}
        finally:
            running.stop()
        context = f"seed {seed}, {kills} kills"
        for parent, final in finals.items():
            assert (final["phase"], final["exitReason"]) == ("Succeeded", "Done"), (context, final)
            assert [(t["from"], t["to"]) for t in final["transitions"]] == [
                ("stopped", "starting"),
                ("starting", "running"),
            ], (context, parent, final)
            assert sorted(c["resource"] for c in final["children"]) == [
                f"{parent}-d{i}" for i in range(3)
            ], (context, final["children"])
            for disk in range(3):
                name = f"{parent}-d{disk}"
                disk_runs = [r for r in volumes.runs(name) if r["spec"]["process"] == activate]
                assert len(disk_runs) == 1, (context, name, disk_runs)
                (only,) = disk_runs
                assert [(t["from"], t["to"]) for t in only["status"]["transitions"]] == [
                    ("inactive", "activating"),
                    ("activating", "active"),
                ], (context, name, only["status"])
                assert volumes.status(name)["state"] == "active", (context, name)


@pytest.mark.parametrize("cascade", ["background", "foreground"])
def test_removing_a_parent_deactivates_its_volumes_then_garbage_collection_removes_them(
    world: World, volumes: World, kubectl: Kubectl, cascade: str
) -> None:
    """Cattle's deactivate-then-remove: the instance's delete process deactivates its
    volumes (relatedRuns); Kubernetes' garbage collector then deletes them, and each one's own
    delete process runs under its finalizer. With foreground deletion the collector deletes
    the volumes first (blockOwnerDeletion): a volume still active is held until the parent's
    remove has deactivated it, so both orders end with everything removed."""
    volumes.define_type(initial="inactive")
    volumes.process("activate", ["inactive"], "activating", "active")
    deactivate = volumes.process("deactivate", ["active"], "deactivating", "inactive")
    vremove = volumes.process("remove", ["inactive"], "removing", "removed", trigger="delete")
    world.define_type(initial="stopped", relations=[{"name": "volumes", "type": volumes.type}])
    remove = world.process(
        "remove",
        ["stopped"],
        "removing",
        "removed",
        trigger="delete",
        relatedRuns=[{"relation": "volumes", "process": deactivate}],
    )
    world.wait_plan(remove, 0)
    volumes.wait_plan(vremove, 0)
    parent = world.create("web")
    disks = ["web-d0", "web-d1"]
    for disk in disks:
        body = {
            "apiVersion": "test.kattle.dev/v1",
            "kind": volumes.kind,
            "metadata": {
                "name": disk,
                "ownerReferences": [{**owner_reference(parent), "blockOwnerDeletion": True}],
            },
            "spec": {},
        }
        volumes.custom.create_namespaced_custom_object(
            "test.kattle.dev", "v1", volumes.namespace, volumes.plural, body
        )
        volumes.wait_state(disk, "inactive")
        volumes.custom.patch_namespaced_custom_object_status(
            "test.kattle.dev",
            "v1",
            volumes.namespace,
            volumes.plural,
            disk,
            {"status": {"state": "active"}},
        )
    world.wait_state("web", "stopped")
    kubectl.run(
        "delete",
        f"{world.plural}.test.kattle.dev",
        "web",
        "-n",
        world.namespace,
        f"--cascade={cascade}",
        "--wait=false",
    )
    wait_for("the volumes to go", lambda: all(volumes.get(d) is None for d in disks), timeout=60)
    wait_for("the instance to go", lambda: world.get("web") is None, timeout=60)
    # The runs went with their objects; their Events stay, and tell the order.

    def notes(disk: str) -> list[str]:
        listed = kubectl.get("events.events.k8s.io", "-n", world.namespace)["items"]
        mine = [
            e
            for e in listed
            if (e.get("regarding") or {}).get("name") == disk
            and e.get("reason") == "Done"
            and e["note"].startswith(f"{volumes.type}.")  # not an earlier test's volume's
        ]
        return [e["note"] for e in sorted(mine, key=lambda e: e.get("eventTime") or "")]

    for disk in disks:
        seen = wait_for(f"{disk}'s Done Events", lambda d=disk: len(notes(d)) >= 2 and notes(d))
        assert seen[0].startswith(f"{deactivate}: active -> deactivating -> inactive"), seen
        assert seen[1].startswith(f"{vremove}: inactive -> removing -> removed"), seen
