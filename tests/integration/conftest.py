"""Fixtures for tests against a real local control plane (never a mock of the API).

One control plane (etcd, kube-apiserver with RBAC, kube-controller-manager) is started per
test session by hack/controlplane.py, the same code `hack/controlplane.sh up` runs, and torn
down when the session ends, whether tests passed or not.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube import Kubectl
from tests.support.paths import CRDS, load_hack_module

controlplane_module = load_hack_module("controlplane")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    """The pinned binaries; a clear failure naming the build command when missing."""
    try:
        path: Path = controlplane_module.binaries_dir()
    except controlplane_module.ControlPlaneError as error:
        pytest.fail(str(error), pytrace=False)
    return path


@pytest.fixture(scope="session")
def controlplane(bin_dir: Path) -> Iterator[Any]:
    state = Path(tempfile.mkdtemp(prefix="kattle-test-controlplane-"))
    plane = controlplane_module.ControlPlane(state, bin_dir, die_with_parent=True)
    try:
        plane.up()
        yield plane
    finally:
        plane.down()


@pytest.fixture(scope="session")
def kubeconfig(controlplane: Any) -> Path:
    path: Path = controlplane.kubeconfig
    return path


@pytest.fixture(scope="session")
def kubectl(bin_dir: Path, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(bin_dir / "kubectl", kubeconfig, tmp_path_factory.mktemp("kubectl-cache"))


@pytest.fixture(scope="session")
def kattle_crds(kubectl: Kubectl) -> None:
    """Kattle's CRDs installed from crds/ and Established."""
    kubectl.run("apply", "--server-side", "-f", str(CRDS))
    kubectl.run(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=kattle",
    )


OPERATOR_NAMESPACE = "kattle-test"


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture(scope="session")
def operator(
    kubeconfig: Path, kattle_crds: None, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One operator process for the session, serving the namespace tests put objects in."""
    from tests.support.operator import OperatorProcess

    kubectl.run("create", "namespace", OPERATOR_NAMESPACE)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(kubeconfig, log, f"--namespace={OPERATOR_NAMESPACE}")
    try:
        yield process.start()
    finally:
        process.stop()
        print(f"\noperator log: {log}")


@pytest.fixture(scope="session")
def handler_server() -> Iterator[Any]:
    from tests.support.handlers import HandlerServer

    server = HandlerServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def world(api_client: Any, operator: Any) -> Iterator[Any]:
    from tests.support.world import World

    created = World(api_client, OPERATOR_NAMESPACE)
    try:
        yield created
    finally:
        created.cleanup()
