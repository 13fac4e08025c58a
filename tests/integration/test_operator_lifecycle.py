"""Deletion through delete processes, definitions coming and going, and `kattle run`."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.world import (
    GROUP,
    TEST_GROUP,
    VERSION,
    World,
    event_reasons,
    event_table,
    wait_for,
)


def _lifecycle(world: World) -> str:
    world.define_type()
    world.process("create", ["requested"], "creating", "stopped", trigger="create")
    world.process("start", ["stopped"], "starting", "running")
    world.process("stop", ["running"], "stopping", "stopped")
    return world.process(
        "remove", ["stopped", "requested"], "removing", "removed", trigger="delete"
    )


def test_delete_runs_the_delete_process_before_the_object_goes(
    world: World, handler_server: HandlerServer
) -> None:
    remove = _lifecycle(world)
    path = f"/{world.type}/remove"
    world.handler("remove", [remove], handler_server.url(path))
    world.wait_plan(remove, 1)
    world.create("a")
    world.wait_state("a", "stopped")
    assert "kattle.dev/processes" in world.get("a")["metadata"]["finalizers"]  # type: ignore[index]
    world.delete("a")
    wait_for("the object to go", lambda: world.get("a") is None)
    [call] = handler_server.calls(path)
    assert call.event["run"]["trigger"] == "delete"
    assert call.event["fromState"] == "stopped"
    assert call.event["resource"]["metadata"]["deletionTimestamp"]


def test_deletion_runs_each_delete_process_in_turn_remove_then_purge(
    world: World, handler_server: HandlerServer
) -> None:
    remove = _lifecycle(world)
    purge = world.process("purge", ["removed"], "purging", "purged", trigger="delete")
    path = f"/{world.type}/cleanup"
    world.handler("cleanup", [remove, purge], handler_server.url(path))
    world.wait_plan(purge, 1)
    world.create("a")
    world.wait_state("a", "stopped")
    world.delete("a")
    wait_for("the object to go", lambda: world.get("a") is None)
    assert [c.event["process"] for c in handler_server.calls(path)] == [remove, purge]


def test_the_last_delete_run_is_recorded_before_its_object_goes(world: World) -> None:
    # The object's runs are garbage-collected with it: each one's record must be final
    # before the object lets go, or it is lost (the purge run stayed Pending).
    _lifecycle(world)
    purge = world.process("purge", ["removed"], "purging", "purged", trigger="delete")
    world.wait_plan(purge, 0)
    world.create("a")
    world.wait_state("a", "stopped")
    seen: dict[str, str] = {}
    gone: set[str] = set()
    stream = watch.Watch()

    def follow() -> None:
        # Ends with a broken stream once stopped (or the 60 s are up).
        with contextlib.suppress(urllib3.exceptions.ProtocolError):
            for event in stream.stream(
                world.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                world.namespace,
                "processinstances",
                # This type's runs only: the namespace holds other tests' objects named `a`.
                label_selector=f"kattle.dev/type={world.type}",
                timeout_seconds=60,
            ):
                pi = event["object"]
                if event["type"] == "DELETED":
                    gone.add(pi["metadata"]["name"])
                else:
                    seen[pi["metadata"]["name"]] = (pi.get("status") or {}).get("phase", "")

    def phases() -> dict[str, str]:  # by run name without its hash: a.create, a.remove...
        return {name.rpartition("-")[0]: phase for name, phase in dict(seen).items()}

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    try:
        # The watch is open once it has shown the create run's record.
        wait_for("the watch on runs", lambda: "a.create" in phases())
        world.delete("a")
        wait_for("the object to go", lambda: world.get("a") is None)
        wait_for("both delete runs", lambda: {"a.remove", "a.purge"} <= phases().keys())
        # Once the collector has deleted a record, nothing more can be written to it.
        wait_for("the runs to go with the object", lambda: set(seen) <= gone, timeout=60)
        last = phases()
    finally:
        stream.stop()
    assert last["a.remove"] == "Succeeded", seen
    assert last["a.purge"] == "Succeeded", seen


def test_a_running_record_is_no_garbage_collectors_so_a_foreground_deletion_waits_for_it(
    world: World, handler_server: HandlerServer
) -> None:
    """A foreground deletion has the garbage collector delete the object's dependents first.
    A run's record is owned by its object only from its last write, so the collector never
    deletes the record of a run still going on (that would cancel it, and leave the object
    in its transitioning state): the delete run ends, its record then goes with the object."""
    remove = _lifecycle(world)
    path = f"/{world.type}/remove"
    handler_server.script(path, Reply({}, delay=2.0))
    world.handler("remove", [remove], handler_server.url(path))
    world.wait_plan(remove, 1)
    obj = world.create("a")
    world.wait_state("a", "stopped")
    ended = world.wait_run(world.run(f"{world.type}.start", "a"))
    assert ended["phase"] == "Succeeded", ended
    [start] = [r for r in world.runs("a") if r["spec"]["process"] == f"{world.type}.start"]
    [owner] = start["metadata"]["ownerReferences"]  # an ended record goes with its object
    assert (owner["uid"], owner["blockOwnerDeletion"]) == (obj["metadata"]["uid"], False)
    world.wait_run(world.run(f"{world.type}.stop", "a"))

    world.custom.delete_namespaced_custom_object(
        TEST_GROUP, "v1", world.namespace, world.plural, "a", propagation_policy="Foreground"
    )
    running = wait_for(
        "the remove run's record, running",
        lambda: [
            r
            for r in world.runs("a")
            if r["spec"]["process"] == remove and (r.get("status") or {}).get("phase") == "Running"
        ],
    )
    assert "ownerReferences" not in running[0]["metadata"], running[0]["metadata"]
    wait_for("the object to go", lambda: world.get("a") is None, timeout=60)
    assert len(handler_server.calls(path)) == 1  # the run was never canceled and started again
    wait_for("its runs to go with it", lambda: world.runs("a") == [])


def test_a_deletion_no_delete_process_allows_is_held_and_says_why(
    world: World, kubectl: Kubectl
) -> None:
    _lifecycle(world)
    world.create("a")
    world.wait_state("a", "stopped")
    world.wait_run(world.run(f"{world.type}.start", "a"))
    world.delete("a")
    held = wait_for(
        "the Deletable condition",
        lambda: next(
            (c for c in world.status("a").get("conditions", []) if c["type"] == "Deletable"), None
        ),
    )
    assert held["status"] == "False"
    assert held["reason"] == "NoDeleteProcess"
    assert "no delete process starts from state 'running'" in held["message"]
    assert f"{world.type}.remove starts from stopped, requested" in held["message"]
    wait_for("a DeletionHeld event", lambda: "DeletionHeld" in event_reasons(kubectl, world, "a"))
    # Moving the object to a state the delete process starts from lets the deletion go on.
    # (Not waiting on the run itself: once the object goes, its runs are garbage-collected.)
    world.run(f"{world.type}.stop", "a")
    wait_for("the object to go", lambda: world.get("a") is None)


def test_each_run_leaves_one_event_with_the_states_it_went_through(
    world: World, kubectl: Kubectl
) -> None:
    _lifecycle(world)
    world.create("a")
    world.wait_state("a", "stopped")
    start = world.run(f"{world.type}.start", "a")
    world.wait_run(start)

    text = wait_for(
        "the start run's Done event",
        lambda: start in (e := event_table(kubectl, world, "a")) and e,
    )
    assert f"{world.type}.create: requested -> creating -> stopped" in text
    assert f"{world.type}.start: stopped -> starting -> running ({start})" in text
    # One Event a run (each is an API write): two runs, two Events.
    assert event_reasons(kubectl, world, "a") == {"Done"}
    assert len(text.strip().splitlines()) == 1 + 2, text


def test_a_reply_can_post_events_on_the_object(
    world: World, kubectl: Kubectl, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/events"
    handler_server.script(
        path,
        Reply(
            {
                "events": [
                    {"reason": "QuotaChecked", "message": "3 of 10 instances in use"},
                    {"type": "Warning", "reason": "ImageOld", "message": "ubuntu:14.04 is EOL"},
                ]
            }
        ),
    )
    world.handler("events", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    assert world.wait_run(world.run(go, "a"))["phase"] == "Succeeded"

    text = wait_for(
        "the handler's events", lambda: "ImageOld" in (e := event_table(kubectl, world, "a")) and e
    )
    # Columns: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE.
    lines = {line.split()[2]: line for line in text.splitlines()[1:] if line.strip()}
    assert "Normal" in lines["QuotaChecked"]
    assert "3 of 10 instances in use" in lines["QuotaChecked"]
    assert "Warning" in lines["ImageOld"]


def test_deleting_a_definition_keeps_the_crd_and_every_object(
    world: World, kubectl: Kubectl
) -> None:
    world.define_type()
    world.create("keep-me")
    world.wait_state("keep-me", "requested")
    kubectl.run("delete", "resourcedefinition", world.type, "--wait=true")
    crd = f"{world.plural}.{TEST_GROUP}"
    assert kubectl.run("get", "crd", crd, check=False).returncode == 0
    assert world.get("keep-me") is not None


def test_a_definition_with_a_taken_plural_is_reported_invalid(world: World) -> None:
    world.define_type()
    twin = World.__new__(World)
    twin.__dict__.update(world.__dict__)
    twin.type = f"{world.type}x"
    twin._apply_cluster(
        "resourcedefinitions",
        {
            "apiVersion": "kattle.dev/v1alpha1",
            "kind": "ResourceDefinition",
            "metadata": {"name": twin.type},
            "spec": {
                "names": {"kind": f"{world.kind}X", "plural": world.plural},
                "group": TEST_GROUP,
            },
        },
    )

    def condition() -> dict[str, str] | None:
        rd = world.custom.get_cluster_custom_object(
            "kattle.dev", "v1alpha1", "resourcedefinitions", twin.type
        )
        return next(
            (c for c in (rd.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"),
            None,
        )

    ready = wait_for("the Ready=False condition", condition)
    assert ready["status"] == "False"
    assert f"already generates {world.plural}.{TEST_GROUP}" in ready["message"]
    with contextlib.suppress(ApiException):
        world.custom.delete_cluster_custom_object(
            "kattle.dev", "v1alpha1", "resourcedefinitions", twin.type
        )


def test_kattle_run_waits_and_prints_the_log(
    world: World, handler_server: HandlerServer, kubeconfig: Path
) -> None:
    _lifecycle(world)
    start = f"{world.type}.start"
    path = f"/{world.type}/start"
    world.handler("boot", [start], handler_server.url(path))
    world.wait_plan(start, 1)
    world.create("web")
    world.wait_state("web", "stopped")
    kattle = Path(sys.executable).parent / "kattle"
    result = subprocess.run(
        [
            str(kattle),
            "run",
            start,
            f"{world.kind.lower()}/web",
            "-n",
            world.namespace,
            "--wait",
            "--data",
            "reason=test",
            "--data",
            "count=3",
            f"--kubeconfig={kubeconfig}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("processinstance.kattle.dev/web.start-")
    assert "  state: stopped -> starting" in lines
    assert f"  handler {world.type}-boot (attempt 1): Succeeded" in lines
    assert "  state: starting -> running" in lines
    assert lines[-1] == "Succeeded (Done)"
    assert handler_server.calls(path)[0].event["data"] == {"reason": "test", "count": 3}
    assert world.status("web")["state"] == "running"

    def kattle_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kattle), *args, "-n", world.namespace, f"--kubeconfig={kubeconfig}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    history = kattle_cli("history", f"{world.plural}/web")
    assert history.returncode == 0, history.stderr
    header, *rows = history.stdout.splitlines()
    assert header.split() == ["NAME", "PROCESS", "PHASE", "EXIT", "DURATION", "HANDLERS", "AGE"]
    assert [r.split()[1:4] for r in rows] == [
        [start, "Succeeded", "Done"],
        [f"{world.type}.create", "Succeeded", "Done"],
    ]
    assert rows[0].split()[5] == f"{world.type}-boot"
    listed = json.loads(kattle_cli("history", f"{world.kind}/web", "-o", "json").stdout)
    assert [r["spec"]["process"] for r in listed["items"]] == [start, f"{world.type}.create"]

    described = kattle_cli("describe", f"pi/{rows[0].split()[0]}")
    assert described.returncode == 0, described.stderr
    assert f"Process:      {start}" in described.stdout
    assert "state: stopped -> starting" in described.stdout
    assert f"handler {world.type}-boot attempt 1, Succeeded in" in described.stdout

    for args, reason in [
        (("history", "nosuchkind/web"), "no ResourceDefinition defines a kind named 'nosuchkind'"),
        (("history", f"{world.plural}/nope"), f"{world.kind} 'nope' not found"),
        (("describe", "pi/nope"), "processinstances 'nope' not found"),
        (("history", "web"), "no ResourceDefinition defines a kind named 'web'"),
        (("tree", "web"), "expected KIND/NAME"),
    ]:
        failed = kattle_cli(*args)
        assert failed.returncode == 1
        assert reason in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1

    wrong = subprocess.run(
        [
            str(kattle),
            "run",
            start,
            "volume/web",
            "-n",
            world.namespace,
            f"--kubeconfig={kubeconfig}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        f"kattle run: {start} runs on {world.kind} objects, not 'volume'"
    )


def test_deletion_policy_delete_removes_the_crd_and_its_objects(
    world: World, kubectl: Kubectl
) -> None:
    world.define_type(deletionPolicy="Delete")
    finalizers = wait_for(
        "the definition's finalizer",
        lambda: kubectl.get("resourcedefinition", world.type)["metadata"].get("finalizers"),
    )
    assert finalizers == ["kattle.dev/generated-crd"]
    world.create("doomed")
    world.wait_state("doomed", "requested")
    kubectl.run("delete", "resourcedefinition", world.type, "--wait=true", "--timeout=60s")
    crd = f"{world.plural}.{TEST_GROUP}"
    wait_for("the CRD to go", lambda: kubectl.run("get", "crd", crd, check=False).returncode != 0)


def _delete_a_retrying_run(
    world: World, handler_server: HandlerServer, kubectl: Kubectl, go: str
) -> tuple[str, str, dict[str, Any]]:
    """Deletes a run of `go` on a new object "a" while its failing handler is retried;
    returns the run, the handler's path and the object's status once it is let go."""
    path = f"/{world.type}/down"
    handler_server.script(path, Reply({}, status=500))
    world.handler("down", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    run = world.run(go, "a")
    wait_for("the run to retry", lambda: world.pi(run).get("status", {}).get("phase") == "Retrying")
    kubectl.run("delete", "processinstance", run, "-n", world.namespace)
    status = wait_for(
        "the object to be let go", lambda: (s := world.status("a")) and "activeRun" not in s and s
    )
    return run, path, status


def test_deleting_a_run_stops_it_and_frees_the_object(
    world: World, handler_server: HandlerServer, kubectl: Kubectl
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    run, path, status = _delete_a_retrying_run(world, handler_server, kubectl, go)
    assert (status["state"], status["transitioning"]) == ("going", "error")
    assert status["transitioningMessage"] == (
        f"run {run} was deleted before it ended; it stays going; processes that start from "
        f"going: {go}"
    )
    calls = len(handler_server.calls(path))
    time.sleep(4)  # longer than Cattle's first backoff: no call comes after the deletion
    assert len(handler_server.calls(path)) == calls


def test_a_deleted_run_names_the_way_out_and_that_process_runs(
    world: World, handler_server: HandlerServer, kubectl: Kubectl
) -> None:
    """Deleting a running run leaves its object in the transitioning state (handlers may
    have done part of their work): the object says which processes start from there (the
    deleted run's own process resumes it, as in Cattle), and running one gets it out."""
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    unstick = world.process("unstick", ["going"], "unsticking", "requested")
    run, _, status = _delete_a_retrying_run(world, handler_server, kubectl, go)
    assert status["transitioningMessage"] == (
        f"run {run} was deleted before it ended; it stays going; processes that start from "
        f"going: {go}, {unstick}"
    )
    out = world.wait_run(world.run(unstick, "a"))
    assert (out["phase"], out["exitReason"]) == ("Succeeded", "Done"), out
    assert world.status("a")["state"] == "requested"


def test_history_is_pruned_to_the_limit(world: World) -> None:
    world.define_type(historyLimit=2)
    world.process("toggle", ["requested"], "toggling", "requested")
    world.create("a")
    world.wait_state("a", "requested")
    runs = [world.run(f"{world.type}.toggle", "a") for _ in range(4)]
    # Runs requested within the same second queue in name order, so any of them may end
    # last; wait for each in turn, whichever were pruned already.
    for run in runs:
        with contextlib.suppress(ApiException):  # pruned already
            world.wait_run(run)
    kept = wait_for("pruning", lambda: len(r := world.runs("a")) == 2 and r)
    assert {r["metadata"]["name"] for r in kept} <= set(runs)
    assert all(r["status"]["phase"] == "Succeeded" for r in kept)
    obj = world.get("a")
    assert obj is not None
    assert obj["status"]["lastRun"]["name"] in {r["metadata"]["name"] for r in kept}


def test_kattle_run_follows_a_chain_even_when_the_first_run_is_pruned(
    world: World, handler_server: HandlerServer, kubeconfig: Path
) -> None:
    world.define_type(historyLimit=1)  # the chaining run goes as soon as its child ends
    go = world.process("go", ["requested"], "going", "gone")
    nxt = world.process("next", ["going"], "nexting", "done")
    path = f"/{world.type}/chain"
    handler_server.script(path, Reply({"chain": nxt}))
    world.handler("chain", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    kattle = Path(sys.executable).parent / "kattle"
    result = subprocess.run(
        [
            *(str(kattle), "run", go, f"{world.plural}/a", "-n", world.namespace, "--wait"),
            f"--kubeconfig={kubeconfig}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    chained = next(i for i, line in enumerate(lines) if line.startswith("Succeeded (Chained)"))
    assert "  state: requested -> going" in lines[:chained]
    assert lines[chained + 1].endswith(" continues")
    assert "  state: going -> nexting" in lines[chained + 2 :]
    assert "  state: nexting -> done" in lines[chained + 2 :]
    assert lines[-1] == "Succeeded (Done)"
    wait_for("the chaining run pruned", lambda: len(world.runs("a")) == 1)
