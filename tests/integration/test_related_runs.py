"""Runs on related objects, end to end: an instance's start activates its volumes (its
children, by ownerReference) and its nic (named in its spec) first, waits for them, and fails
when one fails; a run that would wait for its own ancestor is refused, not deadlocked.

Where a test must know what was going on at the same time (how many siblings ran at once,
whether an `after` step began after the handlers, where a SIGKILL landed), its handlers are
a `Recorder`: SDK handlers that log each call's times and can hold a call until the test
lets it go, so the test waits on what it needs to see, never on how long it has waited."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kattle.machine.names import owner_reference
from kattle.sdk import HandlerApp, ProcessEvent, ProcessReply, RunRequest
from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.sdk_server import serving
from tests.support.witness import Witness, runs_seen
from tests.support.world import FINAL, World, wait_for, world_in

# A held handler call waits at most this long for its test to let it go; the handlers'
# timeoutSeconds is longer, so a held call is never cut short by the operator.
HOLD_SECONDS = 150.0
HANDLER_TIMEOUT = 180


def _time(value: str) -> datetime:
    """A record's time (RFC 3339, fractions of a second when it has them): compared as
    times, since `12:00:05Z` sorts after `12:00:05.3Z` as a string."""
    return datetime.fromisoformat(value)


def most_at_once(spans: list[tuple[Any, Any]]) -> int:
    """The most of `spans` (start, end) that were open at one moment; one ending as another
    starts at the same moment do not overlap."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    open_now = most = 0
    for _, change in edges:
        open_now += change
        most = max(most, open_now)
    return most


@dataclass
class Call:
    handler: str
    resource: str
    key: str
    start: float  # time.monotonic()
    end: float | None = None

    def __repr__(self) -> str:
        end = "in flight" if self.end is None else f"{self.end - self.start:.2f}s"
        key = self.key.split("/")  # <run uid>/<step>/<handler>: the uid's start and the step
        short = "/".join([key[0][:8], *key[1:-1]])
        return f"{self.resource}<-{self.handler.rsplit('-', 1)[-1]}({short}, {end})"


class Recorder:
    """Handlers served by the SDK that log every call with its times, and hold the calls on
    chosen objects until the test lets them go: a test then knows where a run is instead of
    guessing from how long it has been going."""

    def __init__(self) -> None:
        self.app = HandlerApp()
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._held: dict[str, threading.Event] = {}
        self._news: asyncio.Condition | None = None  # made in the serving loop, on first use

    def serve(self, process: str, pace: Callable[[], Awaitable[None]] | None = None) -> None:
        @self.app.on(process)
        async def handle(event: ProcessEvent) -> ProcessReply:
            name = str(event.resource["metadata"]["name"])
            call = Call(event.handler, name, event.idempotency_key, time.monotonic())
            with self._lock:
                self._calls.append(call)
                gate = self._held.get(name)
            await self._tell()
            if gate is not None:
                await asyncio.to_thread(gate.wait, HOLD_SECONDS)
            if pace is not None:
                await pace()
            with self._lock:
                call.end = time.monotonic()
            await self._tell()
            return ProcessReply(data={"seen": name})

    def hold(self, resource: str) -> None:
        with self._lock:
            self._held[resource] = threading.Event()

    def release(self) -> None:
        with self._lock:
            for gate in self._held.values():
                gate.set()

    def calls(self, resource: str | None = None) -> list[Call]:
        with self._lock:
            return [Call(**vars(c)) for c in self._calls if resource in (None, c.resource)]

    def in_flight(self, resource: str) -> bool:
        return any(c.end is None for c in self.calls(resource))

    def _condition(self) -> asyncio.Condition:
        if self._news is None:
            self._news = asyncio.Condition()
        return self._news

    async def _tell(self) -> None:
        news = self._condition()
        async with news:
            news.notify_all()

    async def until(self, ready: Callable[[], bool]) -> None:
        """In a handler: waits until a call starts or ends and `ready()` holds. A minute at
        most: then the call fails, and so does its test, with the run's record to read."""
        news = self._condition()
        async with asyncio.timeout(60), news:
            await news.wait_for(ready)


def _recorded_lifecycle(
    world: World,
    volumes: World,
    recorder: Recorder,
    url: str,
    handlers: tuple[str, ...] = ("vm",),
    **step: Any,
) -> tuple[str, str]:
    """instance.start runs volume.activate on the instance's volumes (one relatedRuns step,
    `step` its fields) and calls `handlers`, in that order of priority; every call goes
    to `recorder`."""
    volumes.define_type(initial="inactive")
    activate = volumes.process("activate", ["inactive"], "activating", "active")
    world.define_type(initial="stopped", relations=[{"name": "volumes", "type": volumes.type}])
    start = world.process(
        "start",
        ["stopped"],
        "starting",
        "running",
        relatedRuns=[{"relation": "volumes", "process": activate, **step}],
    )
    volumes.handler("disk", [activate], f"{url}/disk", retryLimit=0, timeoutSeconds=HANDLER_TIMEOUT)
    for priority, name in enumerate(handlers, 1):
        world.handler(
            name,
            [start],
            f"{url}/{name}",
            retryLimit=0,
            timeoutSeconds=HANDLER_TIMEOUT,
            priority=priority,
        )
    world.wait_plan(start, len(handlers))
    volumes.wait_plan(activate, 1)
    return start, activate


def _family(world: World, volumes: World, parent: str, count: int) -> list[str]:
    """An instance and `count` volumes it owns, all in their initial states."""
    body = world.create(parent)
    disks = [f"{parent}-d{i}" for i in range(count)]
    for disk in disks:
        _child(volumes, disk, body)
    for disk in disks:
        volumes.wait_state(disk, "inactive", timeout=60)
    world.wait_state(parent, "stopped", timeout=60)
    return disks


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


def test_at_most_max_concurrent_sibling_runs_go_at_once(world: World, volumes: World) -> None:
    """maxConcurrent 2, five volumes: never more than two of their runs unfinished at once,
    and two at once indeed. Each activation waits until a sibling's is in flight too (or
    all five have started), so two overlap whenever the operator lets them."""
    recorder = Recorder()
    with serving(recorder.app) as url:
        start, activate = _recorded_lifecycle(world, volumes, recorder, url, maxConcurrent=2)
        recorder.serve(start)

        def paired() -> bool:
            calls = [c for c in recorder.calls() if c.resource != "web"]
            flying = sum(1 for c in calls if c.end is None)
            return flying >= 2 or len({c.resource for c in calls}) == 5

        recorder.serve(activate, pace=lambda: recorder.until(paired))
        _family(world, volumes, "web", 5)
        log = world.wait_run(world.run(start, "web"), timeout=120)
    calls = [c for c in recorder.calls() if c.resource != "web"]
    seen = f"children {log['children']}; calls {calls}"
    assert (log["phase"], log["exitReason"]) == ("Succeeded", "Done"), (log, seen)
    assert len(log["children"]) == 5, seen
    # The runs as the parent recorded them: from when each began to when it ended.
    runs = [(_time(c["startTime"]), _time(c["endTime"])) for c in log["children"]]
    assert most_at_once(runs) == 2, seen
    # The handler calls, as the handlers saw them.
    assert len(calls) == 5, seen
    assert most_at_once([(c.start, c.end) for c in calls]) == 2, seen


def test_after_steps_start_once_the_last_handler_call_has_ended(
    world: World, volumes: World
) -> None:
    recorder = Recorder()
    with serving(recorder.app) as url:
        start, activate = _recorded_lifecycle(
            world, volumes, recorder, url, handlers=("boot", "tune"), when="after"
        )
        recorder.serve(start)
        recorder.serve(activate)
        disks = _family(world, volumes, "web", 2)
        log = world.wait_run(world.run(start, "web"))
    calls = recorder.calls()
    seen = f"calls {log['handlerCalls']}; children {log['children']}; seen {calls}"
    assert (log["phase"], log["exitReason"]) == ("Succeeded", "Done"), (log, seen)
    handled = [c for c in log["handlerCalls"] if c["outcome"] == "Succeeded"]
    assert [c["handler"] for c in handled] == [f"{world.type}-boot", f"{world.type}-tune"], seen
    last_stop = max(_time(c["stop"]) for c in handled)
    assert sorted(c["resource"] for c in log["children"]) == disks, seen
    assert all(_time(c["startTime"]) >= last_stop for c in log["children"]), seen
    # As the handlers saw it: no volume's call came before the instance's last one returned.
    parent_end = max(c.end or 0.0 for c in calls if c.resource == "web")
    assert all(c.start > parent_end for c in calls if c.resource != "web"), seen
    for disk in disks:
        assert volumes.status(disk)["state"] == "active"


def test_a_run_already_done_ends_there_and_nothing_follows_it(
    world: World, volumes: World, handler_server: HandlerServer
) -> None:
    """AlreadyDone is the end: the run calls no handler, runs none of its relatedRuns and
    does not go on in its delegate. Kattle's chains are named only by a handler's reply
    (there is none), so no chain follows either (docs/operator.md)."""
    volumes.define_type(initial="inactive")
    activate = volumes.process("activate", ["inactive"], "activating", "active")
    world.define_type(initial="stopped", relations=[{"name": "volumes", "type": volumes.type}])
    warm = world.process("warm", ["running"], "warming", "warm")
    start = world.process(
        "start",
        ["stopped"],
        "starting",
        "running",
        delegate=warm,
        relatedRuns=[
            {"relation": "volumes", "process": activate},
            {"relation": "volumes", "process": activate, "when": "after"},
        ],
    )
    path = f"/{world.type}"
    world.handler("vm", [start, warm], handler_server.url(path), retryLimit=0)
    world.wait_plan(start, 1)
    world.wait_plan(warm, 1)
    web = world.create("web")
    _child(volumes, "web-d0", web)
    volumes.wait_state("web-d0", "inactive")
    world.wait_state("web", "stopped")
    world.custom.patch_namespaced_custom_object_status(
        "test.kattle.dev",
        "v1",
        world.namespace,
        world.plural,
        "web",
        {"status": {"state": "running"}},
    )
    world.wait_state("web", "running")

    log = world.wait_run(world.run(start, "web"))
    assert (log["phase"], log["exitReason"]) == ("Succeeded", "AlreadyDone"), log
    assert log.get("children", []) == [], log
    assert log.get("handlerCalls", []) == [], log
    assert log.get("transitions", []) == [], log
    assert not log.get("delegatedTo"), log
    assert not log.get("chainedTo"), log
    assert len(world.runs("web")) == 1, world.runs("web")
    status = world.status("web")
    assert (status["state"], status.get("activeRun")) == ("running", None), status
    assert volumes.runs("web-d0") == []
    assert volumes.status("web-d0")["state"] == "inactive"
    assert not handler_server.calls(path)


CLUSTER_RUNS_NAMESPACE = "kattle-related-cluster"


def _cluster_object(kind: World, name: str, **meta_and_spec: Any) -> dict[str, Any]:
    spec = meta_and_spec.pop("spec", {})
    body: dict[str, Any] = kind.custom.create_cluster_custom_object(
        "test.kattle.dev",
        "v1",
        kind.plural,
        {
            "apiVersion": "test.kattle.dev/v1",
            "kind": kind.kind,
            "metadata": {"name": name, **meta_and_spec},
            "spec": spec,
        },
    )
    return body


def _cluster_state(kind: World, name: str) -> str | None:
    body = kind.custom.get_cluster_custom_object("test.kattle.dev", "v1", kind.plural, name)
    status = body.get("status") or {}
    return None if status.get("activeRun") else status.get("state")


def test_related_runs_on_cluster_scoped_types_live_in_the_runs_namespace(
    api_client: Any, operator: Any, kubectl: Kubectl, kubeconfig: Path, tmp_path: Path
) -> None:
    """A cluster-scoped host owns a cluster-scoped disk and names another in its spec: its
    start activates both. Its run and theirs live in the operator's --runs-namespace, with
    the same links as in a namespace."""
    with (
        world_in(api_client, kubectl, CLUSTER_RUNS_NAMESPACE) as hosts,
        world_in(api_client, kubectl, CLUSTER_RUNS_NAMESPACE) as disks,
    ):
        disks.define_type(initial="inactive", scope="Cluster")
        activate = disks.process("activate", ["inactive"], "activating", "active")
        hosts.define_type(
            initial="stopped",
            scope="Cluster",
            relations=[
                {"name": "disks", "type": disks.type},
                {"name": "boot", "type": disks.type, "kind": "reference", "field": "boot"},
            ],
        )
        start = hosts.process(
            "start",
            ["stopped"],
            "starting",
            "running",
            relatedRuns=[
                {"relation": "disks", "process": activate},
                {"relation": "boot", "process": activate},
            ],
        )
        flags = [f"--namespace={CLUSTER_RUNS_NAMESPACE}", f"--runs-namespace={hosts.namespace}"]
        running = OperatorProcess(kubeconfig, tmp_path / "operator.log", *flags).start()
        names = {"host": f"{hosts.type}-h", "data": f"{disks.type}-data", "boot": f"{disks.type}-b"}
        try:
            host = _cluster_object(hosts, names["host"], spec={"boot": names["boot"]})
            _cluster_object(disks, names["data"], ownerReferences=[owner_reference(host)])
            _cluster_object(disks, names["boot"])
            for kind, name in ((disks, "data"), (disks, "boot"), (hosts, "host")):
                wanted = "stopped" if kind is hosts else "inactive"
                wait_for(
                    f"{name} {wanted}",
                    lambda k=kind, n=names[name], w=wanted: _cluster_state(k, n) == w,
                    timeout=60,
                )
            log = hosts.wait_run(hosts.run(start, names["host"]), timeout=90)
        finally:
            running.stop()
        context = (log, running.tail(40))
        assert (log["phase"], log["exitReason"]) == ("Succeeded", "Done"), context
        assert {c["resource"]: c["relation"] for c in log["children"]} == {
            names["data"]: "disks",
            names["boot"]: "boot",
        }, context
        for child in log["children"]:
            assert child["exitReason"] == "Done", context
            spec = disks.pi(child["name"])["spec"]  # in the runs namespace too
            assert (spec["trigger"], spec["process"]) == ("related", activate), spec
            assert spec["ancestry"][0]["resource"] == names["host"], spec
            assert _cluster_state(disks, child["resource"]) == "active"
        for kind, key in ((hosts, "host"), (disks, "data"), (disks, "boot")):
            kind.custom.delete_cluster_custom_object(
                "test.kattle.dev", "v1", kind.plural, names[key]
            )


KILL_NAMESPACE = "kattle-related-kills"

# Where each SIGKILL lands, made certain by holding one handler call: (when the parent's step
# runs, the object whose call is held, what the test waits for before the kill).
KILL_CASES = {
    # The parent holds its object, in its own handler; its step (after) has started nothing.
    "before": ("after", "p"),
    # The step's runs are going: p-d0's has ended, p-d1's is held in its handler.
    "during": ("before", "p-d1"),
    # Every run of the step (before) has ended; the parent is in its handler, not ended.
    "after": ("before", "p"),
}


@pytest.mark.parametrize("phase", list(KILL_CASES))
def test_a_sigkill_before_during_or_after_the_related_runs_repeats_nothing(
    api_client: Any,
    operator: Any,
    kubectl: Kubectl,
    kubeconfig: Path,
    tmp_path: Path,
    phase: str,
) -> None:
    """An operator of its own, SIGKILLed at a known point of a parent's related runs, then
    started again: the parent ends Done, no related run is started twice, no object goes
    through a transition twice, and a call cut off by the kill is made again with the same
    idempotency key."""
    when, held = KILL_CASES[phase]
    recorder = Recorder()
    log = tmp_path / "operator.log"
    flags = f"--namespace={KILL_NAMESPACE}"
    # Read by `seen` as far as the test has got when a failure comes.
    disks: list[str] = []
    run: str | None = None
    at_kill: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    running: OperatorProcess | None = None
    with (
        world_in(api_client, kubectl, KILL_NAMESPACE) as world,
        world_in(api_client, kubectl, KILL_NAMESPACE) as volumes,
        serving(recorder.app) as url,
    ):

        def seen() -> str:
            parent = final if final is not None or run is None else world.pi(run).get("status")
            return "\n".join(
                [
                    f"{phase}: at the kill {at_kill}" if at_kill is not None else phase,
                    f"calls {recorder.calls()}",
                    f"parent {parent}",
                    "runs:",
                    runs_seen(world, ["p"]),
                    *([runs_seen(volumes, disks)] if disks else []),
                    "operator log:",
                    running.tail(60) if running is not None else "(not started)",
                ]
            )

        with Witness(seen) as witness:
            start, activate = _recorded_lifecycle(
                world, volumes, recorder, url, when=when, maxConcurrent=2
            )
            recorder.serve(start)
            recorder.serve(activate)
            running = OperatorProcess(kubeconfig, log, flags).start()
            try:
                disks = _family(world, volumes, "p", 3)
                recorder.hold(held)
                run = world.run(start, "p")
                at_kill = wait_for(
                    f"the kill point {phase!r}",
                    lambda: _kill_point(phase, held, world, volumes, recorder, disks),
                    timeout=120,
                )
                running.kill()
                witness.kills += 1
                recorder.release()
                running = OperatorProcess(kubeconfig, log, flags).start()
                final = world.wait_run(run, timeout=180)
            finally:
                recorder.release()
                running.stop()
            _check_at_kill(phase, at_kill)
            _check_nothing_repeated(world, volumes, recorder, activate, final, held, disks)


def _kill_point(
    phase: str,
    held: str,
    world: World,
    volumes: World,
    recorder: Recorder,
    disks: list[str],
) -> dict[str, Any] | None:
    """What the cluster shows once the held call is in flight (and, `during`, once a
    related run has ended); None before."""
    if not recorder.in_flight(held):
        return None
    runs = {d: [(r.get("status") or {}).get("phase") for r in volumes.runs(d)] for d in disks}
    if phase == "during" and not any(p in FINAL for v in runs.values() for p in v):
        return None
    status = world.status("p")
    return {"state": status.get("state"), "holder": status.get("activeRun"), "runs": runs}


def _check_at_kill(phase: str, at_kill: dict[str, Any]) -> None:
    """The kill landed where the case says."""
    assert at_kill["state"] == "starting"
    assert at_kill["holder"]
    phases = [p for runs in at_kill["runs"].values() for p in runs]
    if phase == "before":
        assert phases == []
    elif phase == "during":
        assert any(p in FINAL for p in phases)
        assert at_kill["runs"]["p-d1"]
        assert at_kill["runs"]["p-d1"][0] not in FINAL
    else:
        assert len(phases) == 3
        assert all(p in FINAL for p in phases)


def _check_nothing_repeated(
    world: World,
    volumes: World,
    recorder: Recorder,
    activate: str,
    final: dict[str, Any],
    held: str,
    disks: list[str],
) -> None:
    assert (final["phase"], final["exitReason"]) == ("Succeeded", "Done")
    assert [(t["from"], t["to"]) for t in final["transitions"]] == [
        ("stopped", "starting"),
        ("starting", "running"),
    ]
    assert sorted((c["resource"], c["attempt"]) for c in final["children"]) == [
        (d, 1) for d in disks
    ]
    for disk in disks:
        disk_runs = [r for r in volumes.runs(disk) if r["spec"]["process"] == activate]
        assert len(disk_runs) == 1, (disk, "started twice", disk_runs)
        assert [(t["from"], t["to"]) for t in disk_runs[0]["status"]["transitions"]] == [
            ("inactive", "activating"),
            ("activating", "active"),
        ], (disk, disk_runs[0]["status"])
        assert volumes.status(disk)["state"] == "active", disk
    assert len(world.runs("p")) == 1
    # A call made again after the kill is the same step of the same run: the same key.
    for name in ["p", *disks]:
        keys = {c.key for c in recorder.calls(name)}
        assert len(keys) == 1, (name, recorder.calls(name))
    assert len(recorder.calls(held)) == 2, (held, "cut off once, made again once")


@pytest.mark.parametrize("cascade", ["background", "foreground"])
def test_removing_a_parent_deactivates_its_volumes_then_garbage_collection_removes_them(
    world: World,
    volumes: World,
    kubectl: Kubectl,
    handler_server: HandlerServer,
    cascade: str,
) -> None:
    """Cattle's deactivate-then-remove: the instance's delete process deactivates its
    volumes (relatedRuns) and waits for them; Kubernetes' garbage collector then deletes
    them, and each one's own delete process runs under its finalizer. With foreground
    deletion the collector deletes the volumes first (blockOwnerDeletion): a volume still
    active is held until the parent's remove has deactivated it, so both orders end with
    everything removed. The deactivations are slow, so a remove that did not wait for them
    would end first."""
    volumes.define_type(initial="inactive")
    volumes.process("activate", ["inactive"], "activating", "active")
    deactivate = volumes.process("deactivate", ["active"], "deactivating", "inactive")
    slow = f"/{volumes.type}-deactivate"
    handler_server.script(slow, Reply({}, delay=1.0))
    volumes.handler("slow", [deactivate], handler_server.url(slow), retryLimit=0)
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
    volumes.wait_plan(deactivate, 1)
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
    # Generous: under a full suite's load the garbage collector and a retried step are slow;
    # a failure says where each object and run stood.
    seen = lambda: runs_seen(volumes, disks) + "\n" + runs_seen(world, ["web"])  # noqa: E731
    with Witness(seen):
        wait_for(
            "the volumes to go", lambda: all(volumes.get(d) is None for d in disks), timeout=180
        )
        wait_for("the instance to go", lambda: world.get("web") is None, timeout=180)
    # The runs went with their objects; their Events stay, and tell the order.

    def done(name: str, kind: World) -> list[dict[str, Any]]:
        listed = kubectl.get("events.events.k8s.io", "-n", world.namespace)["items"]
        mine = [
            e
            for e in listed
            if (e.get("regarding") or {}).get("name") == name
            and e.get("reason") == "Done"
            and e["note"].startswith(f"{kind.type}.")  # not an earlier test's object's
        ]
        return sorted(mine, key=lambda e: _time(e["eventTime"]))

    (removed,) = wait_for("the instance's Done Event", lambda: done("web", world))
    assert removed["note"].startswith(f"{remove}: stopped -> removing -> removed"), removed
    for disk in disks:
        seen = wait_for(
            f"{disk}'s Done Events",
            lambda d=disk: len(found := done(d, volumes)) >= 2 and found,
        )
        notes = [e["note"] for e in seen]
        assert notes[0].startswith(f"{deactivate}: active -> deactivating -> inactive"), notes
        assert notes[1].startswith(f"{vremove}: inactive -> removing -> removed"), notes
        # The instance's remove waited: it ended after each volume's deactivation had.
        deactivated = _time(seen[0]["eventTime"])
        assert deactivated < _time(removed["eventTime"]), (
            cascade,
            [(e["note"], e["eventTime"]) for e in [removed, *seen]],
        )
