"""The operator runs Cattle processes: triggers, handler order, data, chain, retries, errors."""

from __future__ import annotations

from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from kubernetes import watch

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.world import TEST_GROUP, World, wait_for


def test_create_trigger_moves_a_new_object_to_done(world: World) -> None:
    world.define_type()
    world.process("create", ["requested"], "creating", "ready", trigger="create")
    world.create("a")
    status = world.wait_state("a", "ready")
    assert status["transitioning"] == "no"
    assert status["lastRun"]["process"] == f"{world.type}.create"
    [run] = world.ended_runs("a", 1)
    log = run["status"]
    assert log["phase"] == "Succeeded"
    assert log["exitReason"] == "Done"
    assert run["spec"]["trigger"] == "create"
    assert [(t["from"], t["to"]) for t in log["transitions"]] == [
        ("requested", "creating"),
        ("creating", "ready"),
    ]


def test_a_process_with_no_logic_goes_to_done_in_one_write(world: World) -> None:
    """Cattle "simply updates the state and is done": the object is never seen in the
    transitioning state (one compare-and-set write), and the record still shows it."""
    world.define_type()
    world.process("create", ["requested"], "creating", "ready", trigger="create")
    seen: list[tuple[str, str | None]] = []
    stream = watch.Watch()
    created = world.create("a")
    for event in stream.stream(
        world.custom.list_namespaced_custom_object,
        TEST_GROUP,
        "v1",
        world.namespace,
        world.plural,
        field_selector="metadata.name=a",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=30,
    ):
        status = event["object"].get("status") or {}
        seen.append((event["type"], status.get("state")))
        if status.get("state") == "ready":
            stream.stop()
    assert [s for _, s in seen] == ["ready"], seen  # one write, straight from requested
    [run] = world.ended_runs("a", 1)
    log = run["status"]
    assert [(t["from"], t["to"]) for t in log["transitions"]] == [
        ("requested", "creating"),
        ("creating", "ready"),
    ]
    assert world.status("a")["lastRun"]["fromState"] == "requested"


def test_without_a_create_process_objects_start_in_the_initial_state(world: World) -> None:
    world.define_type(initial="pending")
    world.create("a")
    assert world.wait_state("a", "pending")["transitioning"] == "no"


def test_handlers_run_by_phase_then_priority_then_name(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    world.process("create", ["requested"], "creating", "stopped", trigger="create")
    go = world.process("go", ["stopped"], "going", "gone")
    prefix = f"/{world.type}"
    world.handler("post", [go], handler_server.url(f"{prefix}/post"), phase="post", priority=0)
    world.handler("main", [go], handler_server.url(f"{prefix}/main"), priority=1)
    world.handler("pre-b", [go], handler_server.url(f"{prefix}/pre-b"), phase="pre", priority=5)
    world.handler("pre-a", [go], handler_server.url(f"{prefix}/pre-a"), phase="pre", priority=5)
    world.handler("first", ["*.go"], handler_server.url(f"{prefix}/first"), phase="pre", priority=1)
    world.wait_plan(go, 5)
    world.create("a")
    world.wait_state("a", "stopped")
    run = world.run(go, "a")
    log = world.wait_run(run)
    assert log["phase"] == "Succeeded", log
    order = [c.path.rsplit("/", 1)[1] for c in handler_server.calls() if c.path.startswith(prefix)]
    assert order == ["first", "pre-a", "pre-b", "main", "post"]
    assert [c["handler"] for c in log["handlerCalls"]] == [
        f"{world.type}-{n}" for n in ("first", "pre-a", "pre-b", "main", "post")
    ]
    event = handler_server.calls(f"{prefix}/main")[0].event
    assert event["process"] == go
    assert event["phase"] == "handler"
    assert event["fromState"] == "stopped"
    assert event["transitioning"] == "going"
    assert event["resource"]["status"]["state"] == "going"
    assert world.status("a")["state"] == "gone"


def test_process_data_flows_through_handlers_and_status_writes_land(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    prefix = f"/{world.type}"
    handler_server.script(f"{prefix}/one", Reply({"data": {"ip": "10.0.0.7", "n": 1}}))
    handler_server.script(
        f"{prefix}/two",
        Reply({"data": {"n": 2}, "status": {"ip": "10.0.0.7"}, "message": "allocated"}),
    )
    world.handler("one", [go], handler_server.url(f"{prefix}/one"), priority=1)
    world.handler("two", [go], handler_server.url(f"{prefix}/two"), priority=2)
    world.wait_plan(go, 2)
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a", data={"owner": "me"}))
    assert log["phase"] == "Succeeded"
    second = handler_server.calls(f"{prefix}/two")[0].event
    assert second["data"] == {"owner": "me", "ip": "10.0.0.7", "n": 1}
    assert log["data"] == {"owner": "me", "ip": "10.0.0.7", "n": 2}
    assert log["handlerCalls"][1]["message"] == "allocated"
    assert world.status("a")["ip"] == "10.0.0.7"


def test_a_process_with_no_handlers_moves_straight_through(world: World) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert (log["phase"], log["exitReason"]) == ("Succeeded", "Done")
    assert log.get("handlerCalls", []) == []


def test_chain_skips_done_and_continues_with_the_chained_process(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    create = world.process("create", ["requested"], "creating", "stopped", trigger="create")
    start = world.process("start", ["stopped", "creating"], "starting", "running")
    path = f"/{world.type}/chain"
    handler_server.script(path, Reply({"chain": start, "data": {"k": "v"}}))
    world.handler("chain", [create], handler_server.url(path))
    world.wait_plan(create, 1)
    world.create("a")
    status = world.wait_state("a", "running")
    # By process, not by age: the create run's record is written as it ends, after the run
    # it chained was created, so across a second's boundary it is the younger of the two.
    runs = {r["spec"]["process"]: r for r in world.ended_runs("a", 2)}
    first, second = runs[create], runs[start]
    assert (first["status"]["phase"], first["status"]["exitReason"]) == ("Succeeded", "Chained")
    assert first["status"]["chainedTo"] == second["metadata"]["name"]
    assert second["spec"]["trigger"] == "chain"
    assert second["spec"]["parent"] == first["metadata"]["name"]
    assert second["status"]["data"] == {"k": "v"}
    assert [(t["from"], t["to"]) for t in second["status"]["transitions"]] == [
        ("creating", "starting"),
        ("starting", "running"),
    ]
    assert status["lastRun"]["name"] == second["metadata"]["name"]
    # The done state of the first process was skipped.
    assert all(t["to"] != "stopped" for t in first["status"]["transitions"])


def test_retry_after_calls_again_with_the_same_idempotency_key(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/later"
    handler_server.script(path, Reply({"retryAfterSeconds": 1, "message": "not yet"}), Reply({}))
    world.handler("later", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert log["phase"] == "Succeeded"
    calls = handler_server.calls(path)
    assert [c.event["attempt"] for c in calls] == [1, 2]
    assert calls[0].event["idempotencyKey"] == calls[1].event["idempotencyKey"]
    assert [c["outcome"] for c in log["handlerCalls"]] == ["RetryAfter", "Succeeded"]


def test_an_error_is_retried_with_backoff_until_it_recovers(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/flaky"
    handler_server.script(path, Reply({"boom": True}, status=500), Reply({}))
    handler = world.handler("flaky", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    run = world.run(go, "a")
    errored = wait_for(
        "the object to show the error",
        lambda: (s := world.status("a")).get("transitioning") == "error" and s,
    )
    assert errored["state"] == "going"
    assert handler in errored["transitioningMessage"]
    assert "HTTP 500" in errored["transitioningMessage"]
    log = world.wait_run(run)
    assert log["phase"] == "Succeeded"
    assert [c["outcome"] for c in log["handlerCalls"]] == ["Error", "Succeeded"]
    calls = handler_server.calls(path)
    gap = calls[1].event["attempt"] - calls[0].event["attempt"]
    assert gap == 1
    status = world.status("a")
    assert (status["state"], status["transitioning"]) == ("gone", "no")
    assert "transitioningMessage" not in status


def test_exhausted_retries_leave_the_object_visibly_in_error(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/broken"
    handler_server.script(path, Reply(b"not json at all"))
    world.handler("broken", [go], handler_server.url(path), retryLimit=0)
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert (log["phase"], log["exitReason"]) == ("Failed", "RetriesExhausted")
    assert "invalid reply" in log["message"]
    status = world.status("a")
    assert (status["state"], status["transitioning"]) == ("going", "error")
    assert "invalid reply" in status["transitioningMessage"]
    assert handler_server.url(path) in status["transitioningMessage"]
    assert "activeRun" not in status


def test_on_error_takes_over_when_retries_are_exhausted(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    world.process("error", ["going"], "erroring", "error")
    go = world.process("go", ["requested"], "going", "gone", onError=f"{world.type}.error")
    path = f"/{world.type}/fails"
    handler_server.script(path, Reply({"error": "disk full"}))
    world.handler("fails", [go], handler_server.url(path), retryLimit=0)
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert (log["phase"], log["exitReason"]) == ("Failed", "OnError")
    assert "disk full" in log["message"]
    world.wait_state("a", "error")
    handover = world.wait_run(log["chainedTo"])
    assert handover["phase"] == "Succeeded"


def test_failure_policy_ignore_goes_on(world: World, handler_server: HandlerServer) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/optional"
    handler_server.script(path, Reply({}, status=503))
    world.handler("optional", [go], handler_server.url(path), retryLimit=0, failurePolicy="Ignore")
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert log["phase"] == "Succeeded"
    assert [c["outcome"] for c in log["handlerCalls"]] == ["Error", "Ignored"]


def test_a_run_whose_start_state_does_not_hold_is_canceled(world: World) -> None:
    world.define_type()
    go = world.process("go", ["stopped"], "going", "gone")
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert (log["phase"], log["exitReason"]) == ("Canceled", "Canceled")
    assert "starts from stopped" in log["message"]
    assert world.status("a")["state"] == "requested"


def test_a_run_on_a_missing_object_ends_resource_gone(world: World) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    log = world.wait_run(world.run(go, "nobody"))
    assert (log["phase"], log["exitReason"]) == ("Canceled", "ResourceGone")


def test_a_run_of_an_unknown_process_fails_invalid(world: World) -> None:
    world.define_type()
    world.create("a")
    log = world.wait_run(world.run(f"{world.type}.nothing", "a"), timeout=30)
    assert (log["phase"], log["exitReason"]) == ("Failed", "Invalid")
    assert f"no ProcessDefinition named {world.type}.nothing" in log["message"]


def test_two_runs_on_one_object_never_overlap(world: World, handler_server: HandlerServer) -> None:
    world.define_type()
    go = world.process("toggle", ["requested"], "toggling", "requested")
    path = f"/{world.type}/slow"
    handler_server.script(path, Reply({}, delay=1.0))
    world.handler("slow", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    first = world.run(go, "a")
    second = world.run(go, "a")
    pending = wait_for(
        "the second run to wait",
        lambda: (world.pi(second).get("status") or {}).get("phase") == "Pending",
    )
    assert pending
    logs = [world.wait_run(first), world.wait_run(second)]
    assert [log["phase"] for log in logs] == ["Succeeded", "Succeeded"]
    spans = sorted((log["transitions"][0]["time"], log["transitions"][-1]["time"]) for log in logs)
    assert spans[0][1] <= spans[1][0], f"runs overlapped: {spans}"


def test_queued_runs_go_in_the_order_they_were_asked_for(
    world: World, handler_server: HandlerServer
) -> None:
    """Creation times are to the second: runs asked for within one second still go first
    come, first served, not by name."""
    world.define_type()
    go = world.process("toggle", ["requested"], "toggling", "requested")
    path = f"/{world.type}/slow"
    handler_server.script(path, Reply({}, delay=0.5), Reply({}))
    world.handler("slow", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    asked = []
    for suffix in ("z", "m", "c", "a"):
        world.custom.create_namespaced_custom_object(
            "kattle.dev",
            "v1alpha1",
            world.namespace,
            "processinstances",
            {
                "apiVersion": "kattle.dev/v1alpha1",
                "kind": "ProcessInstance",
                "metadata": {"name": f"a.toggle-{suffix}"},
                "spec": {"process": go, "resource": {"name": "a"}},
            },
        )
        asked.append(f"a.toggle-{suffix}")
    for name in asked:
        world.wait_run(name)
    called = [c.event["run"]["name"] for c in handler_server.calls(path)]
    assert called == asked


def test_definitions_that_do_not_fit_together_are_reported_and_do_not_run(world: World) -> None:
    """Each valid alone: an onError process that cannot start where a failed run leaves
    the object. The definition says so, and its runs end Invalid without touching it."""
    world.define_type()
    world.process("error", ["requested"], "erroring", "error")
    go = world.process("go", ["requested"], "going", "gone", onError=f"{world.type}.error")

    def condition() -> dict[str, str] | None:
        pd = world.custom.get_cluster_custom_object(
            "kattle.dev", "v1alpha1", "processdefinitions", go
        )
        found = [
            c for c in (pd.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"
        ]
        return found[0] if found and found[0]["status"] == "False" else None

    ready = wait_for("the Ready=False condition", condition)
    expected = f"onError process {world.type}.error cannot start from 'going'"
    assert ready["reason"] == "Invalid"
    assert expected in ready["message"]
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert (log["phase"], log["exitReason"]) == ("Failed", "Invalid")
    assert expected in log["message"]
    assert world.status("a")["state"] == "requested"


def test_a_second_state_field_starts_in_its_initial_state(world: World) -> None:
    # Cattle keeps further state machines beside `state` (allocation, health): each starts
    # in the initial state its type gives it.
    world.define_type(initialStates={"healthState": "unknown"})
    check = world.process(
        "check", ["unknown", "unhealthy"], "checking", "healthy", stateField="healthState"
    )
    world.wait_plan(check, 0)
    world.create("a")
    world.wait_state("a", "requested")
    assert world.status("a")["healthState"] == "unknown"
    log = world.wait_run(world.run(check, "a"))
    assert log["phase"] == "Succeeded", log
    assert [(t["field"], t["from"], t["to"]) for t in log["transitions"]] == [
        ("healthState", "unknown", "checking"),
        ("healthState", "checking", "healthy"),
    ]
    status = world.status("a")
    assert (status["state"], status["healthState"]) == ("requested", "healthy")


def test_a_handler_says_which_processes_call_it_and_what_it_lacks(world: World) -> None:
    """A registration that matches no process yet, or names a Secret nobody made, is
    visible on its status (`kubectl get ph` READY) rather than found out by a failed run."""
    world.define_type()
    early = world.handler(
        "early",
        [f"{world.type}.go"],
        "http://127.0.0.1:9/",
        signingSecretRef={"namespace": world.namespace, "name": "not-made"},
    )
    status = world.wait_handler(early)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ReferenceUnavailable"), ready
    assert ready["message"] == (
        f"signing key: Secret {world.namespace}/not-made does not exist; "
        f"no ProcessDefinition matches {world.type}.go: the handler is called once one does"
    )
    assert status["processes"] == []

    plain = world.handler("plain", [f"{world.type}.go"], "http://127.0.0.1:9/")
    ready = next(c for c in world.wait_handler(plain)["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NoProcess"), ready

    go = world.process("go", ["requested"], "going", "gone")

    def attached() -> dict[str, Any] | None:
        ph = world.custom.get_cluster_custom_object(
            "kattle.dev", "v1alpha1", "processhandlers", plain
        )
        status = ph.get("status") or {}
        return status if status.get("processes") == [go] else None

    status = wait_for(f"{plain} attached to {go}", attached)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "True",
        "Attached",
        "called by 1 process(es)",
    )


def test_kubectl_waits_on_a_runs_succeeded_condition(
    world: World, handler_server: HandlerServer, kubectl: Kubectl
) -> None:
    """As with Tekton's and Knative's runs: Unknown while it runs, then True, or False with
    the exit reason, so scripts wait with `kubectl wait --for=condition=Succeeded`."""
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/gate"
    handler_server.script(path, Reply({}, delay=1.0), Reply({"error": "no"}))
    world.handler("gate", [go], handler_server.url(path), retryLimit=0)
    world.wait_plan(go, 1)
    for name in ("a", "b"):
        world.create(name)
        world.wait_state(name, "requested")
    good = world.run(go, "a")
    running = wait_for(
        "the run's Running phase",
        lambda: (s := world.pi(good).get("status") or {}).get("phase") == "Running" and s,
    )
    assert [(c["type"], c["status"], c["reason"]) for c in running["conditions"]] == [
        ("Succeeded", "Unknown", "Running")
    ]
    where = ["-n", world.namespace, "--timeout=30s"]
    kubectl.run("wait", "--for=condition=Succeeded", f"processinstance/{good}", *where)
    bad = world.run(go, "b")
    kubectl.run("wait", "--for=condition=Succeeded=False", f"processinstance/{bad}", *where)
    (failed,) = world.pi(bad)["status"]["conditions"]
    assert (failed["reason"], failed["message"]) == (
        "RetriesExhausted",
        world.pi(bad)["status"]["message"],
    )


def test_objects_carry_the_conditions_kstatus_reads(
    world: World, handler_server: HandlerServer, kubectl: Kubectl
) -> None:
    """Ready, Reconciling and Stalled (kstatus's) and observedGeneration ride on the writes
    that move an object: `kubectl wait --for=condition=Ready` works on any orchestrated
    object, a running process is progressing and a failed one is stalled, for tools that
    read kstatus (Flux, Argo CD) with no health script."""
    world.define_type()
    go = world.process("go", ["requested", "gone"], "going", "gone")
    path = f"/{world.type}/slow"
    handler_server.script(path, Reply({}, delay=1.5), Reply({"error": "disk full"}))
    world.handler("slow", [go], handler_server.url(path), retryLimit=0)
    world.wait_plan(go, 1)
    world.create("a")
    target = f"{world.plural}.{TEST_GROUP}/a"
    where = ["-n", world.namespace, "--timeout=30s"]
    kubectl.run("wait", "--for=condition=Ready", target, *where)

    def conditions() -> dict[str, tuple[str, str]]:
        found = world.status("a").get("conditions") or []
        return {c["type"]: (c["status"], c["reason"]) for c in found}

    run = world.run(go, "a")
    kubectl.run("wait", "--for=condition=Reconciling", target, *where)
    assert conditions() == {
        "Ready": ("False", "Transitioning"),
        "Reconciling": ("True", "Transitioning"),
    }
    world.wait_run(run)
    kubectl.run("wait", "--for=condition=Ready", target, *where)
    assert conditions() == {"Ready": ("True", "InState")}
    failed = world.wait_run(world.run(go, "a"))
    assert failed["phase"] == "Failed", failed
    assert conditions() == {
        "Ready": ("False", "TransitioningError"),
        "Stalled": ("True", "TransitioningError"),
    }
    stalled = next(c for c in world.status("a")["conditions"] if c["type"] == "Stalled")
    assert "disk full" in stalled["message"]
    # A spec change while nothing runs is seen: observedGeneration catches up.
    kubectl.run("patch", target, "-n", world.namespace, "--type=merge", "-p", '{"spec":{"size":2}}')
    generation = world.get("a")["metadata"]["generation"]  # type: ignore[index]
    wait_for(
        "observedGeneration to catch up",
        lambda: world.status("a").get("observedGeneration") == generation,
    )


def test_each_call_is_a_cloudevent_in_binary_mode(
    world: World, handler_server: HandlerServer
) -> None:
    """The CloudEvents SDK reads a handler call as an event: its id the idempotency key, its
    source the run, its subject the object, its data the ProcessEvent."""
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/ce"
    world.handler("ce", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    run = world.run(go, "a")
    world.wait_run(run)
    (call,) = handler_server.calls(path)
    event = from_binary(HTTPMessage(call.headers, call.body), JSONFormat())
    attributes = event.get_attributes()
    assert attributes["specversion"] == "1.0"
    assert attributes["id"] == call.event["idempotencyKey"]
    assert attributes["source"] == (
        f"/apis/kattle.dev/v1alpha1/namespaces/{world.namespace}/processinstances/{run}"
    )
    assert attributes["type"] == "dev.kattle.processevent.v1alpha1"
    assert attributes["subject"] == f"{world.kind}/a"
    assert event.get_data() == call.event


def test_a_glob_attaches_a_handler_to_every_process_it_matches(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    back = world.process("back", ["gone"], "returning", "requested")
    path = f"/{world.type}/all"
    handler = world.handler("all", [f"{world.type}.*"], handler_server.url(path))
    wait_for(
        "the glob to attach to both processes",
        lambda: world.wait_handler(handler).get("processes") == sorted([back, go]),
    )
    world.create("a")
    world.wait_state("a", "requested")
    for process in (go, back):
        assert world.wait_run(world.run(process, "a"))["phase"] == "Succeeded"
    assert [c.event["process"] for c in handler_server.calls(path)] == [go, back]


@pytest.mark.parametrize("mode", ["All", "FirstResult"])
def test_a_handler_at_a_lower_priority_number_overrides_the_others_in_first_result_mode(
    world: World, handler_server: HandlerServer, mode: str
) -> None:
    """Cattle's handler phase: with `handlerMode: FirstResult`, the first handler that
    replies (priority 1000) ends the phase, so the built-in one (2000) is not called; a reply
    with `continue: true` lets the next one run; listeners always run. `All` calls all."""
    world.define_type()
    go = world.process("go", ["requested", "gone"], "going", "gone", handlerMode=mode)
    paths = {name: f"/{world.type}/{name}" for name in ("custom", "builtin", "after")}
    handler_server.script(
        paths["custom"], Reply({"data": {"by": "custom"}}), Reply({"continue": True})
    )
    world.handler("custom", [go], handler_server.url(paths["custom"]), priority=1000)
    world.handler("builtin", [go], handler_server.url(paths["builtin"]), priority=2000)
    world.handler("after", [go], handler_server.url(paths["after"]), phase="post")
    world.wait_plan(go, 3)
    world.create("a")
    world.wait_state("a", "requested")
    first = world.wait_run(world.run(go, "a"))
    second = world.wait_run(world.run(go, "a"))  # custom now replies `continue: true`
    assert (first["phase"], second["phase"]) == ("Succeeded", "Succeeded")
    called = [c.path.rpartition("/")[2] for c in handler_server.calls() if c.path in paths.values()]
    if mode == "All":
        assert called == ["custom", "builtin", "after"] * 2
    else:
        assert called == ["custom", "after", "custom", "builtin", "after"]
        note = first["handlerCalls"][0]["message"]
        assert note.endswith(
            f"answered first (handlerMode FirstResult): {world.type}-builtin not called"
        )


def test_a_long_step_reports_its_progress_on_the_object_and_in_the_log(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/long"
    working = {"retryAfterSeconds": 2, "progress": {"percent": 40, "message": "copying"}}
    handler_server.script(path, Reply(working), Reply({}))
    world.handler("long", [go], handler_server.url(path))
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    run = world.run(go, "a")
    shown = wait_for(
        "the progress on the object",
        lambda: (s := world.status("a")).get("transitioningProgress") == 40 and s,
    )
    assert (shown["transitioning"], shown["transitioningMessage"]) == ("yes", "copying")
    final = world.wait_run(run)
    assert final["phase"] == "Succeeded", final
    assert [(c["outcome"], c.get("message")) for c in final["handlerCalls"]] == [
        ("RetryAfter", "40%: copying"),
        ("Succeeded", ""),
    ]
    status = world.status("a")
    assert "transitioningProgress" not in status
    assert status.get("transitioningMessage") is None


def test_handlers_serve_the_namespaces_and_objects_their_selectors_match(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    here = {"matchLabels": {"kubernetes.io/metadata.name": world.namespace}}
    elsewhere = {"matchLabels": {"kubernetes.io/metadata.name": "not-this-one"}}
    gold = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]}
    paths = {name: f"/{world.type}/{name}" for name in ("here", "elsewhere", "gold", "all")}
    world.handler("here", [go], handler_server.url(paths["here"]), namespaceSelector=here)
    world.handler(
        "elsewhere", [go], handler_server.url(paths["elsewhere"]), namespaceSelector=elsewhere
    )
    world.handler("gold", [go], handler_server.url(paths["gold"]), objectSelector=gold)
    world.handler("all", [go], handler_server.url(paths["all"]))
    world.wait_plan(go, 4)
    world.create("plain")
    world.custom.create_namespaced_custom_object(
        TEST_GROUP,
        "v1",
        world.namespace,
        world.plural,
        {
            "apiVersion": f"{TEST_GROUP}/v1",
            "kind": world.kind,
            "metadata": {"name": "shiny", "labels": {"tier": "gold"}},
        },
    )
    for obj in ("plain", "shiny"):
        world.wait_state(obj, "requested")
        assert world.wait_run(world.run(go, obj))["phase"] == "Succeeded"
    called = {
        (c.event["resource"]["metadata"]["name"], c.path.rpartition("/")[2])
        for c in handler_server.calls()
        if c.path in paths.values()
    }
    assert called == {
        ("plain", "here"),
        ("plain", "all"),
        ("shiny", "here"),
        ("shiny", "gold"),
        ("shiny", "all"),
    }
