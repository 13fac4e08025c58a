"""The API server or etcd goes away mid-run and comes back: every run finishes, once.

A control plane of its own (the session's one serves the other tests), with an operator
of its own; runs are in flight (their handler calls take a few seconds) when the outage
begins, and more are asked for as it ends.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import controlplane_module
from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.paths import CRDS
from tests.support.world import World, wait_for

NAMESPACE = "faults"
OBJECTS = 20


@pytest.fixture(scope="module")
def plane(bin_dir: Path) -> Iterator[Any]:
    state = Path(tempfile.mkdtemp(prefix="kattle-test-faults-"))
    control = controlplane_module.ControlPlane(
        state, bin_dir, controller_manager=False, die_with_parent=True
    )
    try:
        control.up()
        admin = Kubectl(bin_dir / "kubectl", control.kubeconfig, state / "kubectl-cache")
        admin.run("apply", "--server-side", "-f", str(CRDS))
        admin.run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        admin.run("create", "namespace", NAMESPACE)
        yield control
    finally:
        control.down()


@pytest.fixture
def world(plane: Any) -> Iterator[World]:
    from kubernetes import config

    created = World(config.new_client_from_config(config_file=str(plane.kubeconfig)), NAMESPACE)
    try:
        yield created
    finally:
        created.cleanup()


def _run_when_admitted(world: World, process: str, name: str) -> str:
    """Creates a run as a user would: again while a freshly started API server has not
    yet loaded the run access policy's parameter kind (it refuses, failing closed)."""
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + 60
    while True:
        try:
            return world.run(process, name)
        except ApiException as error:
            if "failed to configure policy" not in str(error.body) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _transitions(world: World, run: str) -> list[str]:
    return [t["to"] for t in world.pi(run)["status"].get("transitions", [])]


@pytest.mark.parametrize(("component", "outage"), [("kube-apiserver", 10.0), ("etcd", 5.0)])
def test_runs_in_flight_survive_an_outage(
    plane: Any,
    world: World,
    handler_server: HandlerServer,
    tmp_path: Path,
    component: str,
    outage: float,
) -> None:
    operator = OperatorProcess(plane.kubeconfig, tmp_path / "operator.log", f"-n={NAMESPACE}")
    operator.start()
    try:
        world.define_type()
        go = world.process("go", ["requested"], "going", "gone")
        path = f"/{world.type}/slow"
        handler_server.script(path, Reply({"data": {"seen": True}}, delay=2.0))
        world.handler("slow", [go], handler_server.url(path), timeoutSeconds=10)
        world.wait_plan(go, 1)
        names = [f"o{i}" for i in range(OBJECTS)]
        for name in names:
            world.create(name)
        for name in names:
            world.wait_state(name, "requested")
        half = OBJECTS // 2
        runs = {name: world.run(go, name) for name in names[:half]}
        wait_for("handler calls in flight", lambda: len(handler_server.calls(path)) >= half // 2)

        plane.stop(component)
        time.sleep(outage)
        plane.start(component)
        runs |= {name: _run_when_admitted(world, go, name) for name in names[half:]}

        for name, run in runs.items():
            log = world.wait_run(run, timeout=120)
            assert log["phase"] == "Succeeded", (name, log, operator.tail())
            assert _transitions(world, run) == ["going", "gone"], (name, log)
            assert world.status(name)["state"] == "gone"
        assert operator.process is not None
        assert operator.process.poll() is None, "the operator exited during the outage"
    finally:
        operator.stop()
