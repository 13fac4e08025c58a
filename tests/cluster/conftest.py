"""Fixtures for the end-to-end tests: a cluster that runs pods, and Kattle installed in it
with Helm as a user installs it.

On the local node (hack/node.py) the session builds what is missing (the node's binaries,
the images from the Dockerfiles), brings the node up, and at the end brings it down and
fails if the host is not as it was (hack/node.py's host_snapshot: links, addresses, routes,
firewall rules, mounts, cgroups, every kernel setting kubelet writes and those of the
network, the folders a node may create, the node's programs). Where a node cannot run (not
root), the tests are skipped with the one-line reason (they fail instead with
KATTLE_REQUIRE_CLUSTER set, as in CI); with KATTLE_E2E_KUBECONFIG they run
against that cluster instead (hack/kind-e2e.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import (
    LOCAL_HANDLER_NODE_IMAGE,
    LOCAL_HANDLER_PYTHON_IMAGE,
    LOCAL_IMAGE,
    Cluster,
)
from tests.support.kube import Kubectl
from tests.support.paths import HACK, load_hack_module

node_module = load_hack_module("node")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.path):
            item.add_marker(pytest.mark.cluster)


def _build(*command: str) -> None:
    result = subprocess.run(
        [str(HACK / command[0]), *command[1:]], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}", pytrace=False)


# Set (as .ci/run does) where the cluster tests must run: a machine that cannot run a node
# then fails them instead of skipping them.
REQUIRE_VARIABLE = "KATTLE_REQUIRE_CLUSTER"


# Package scope: the node goes as soon as the last cluster test has run, so it does not
# load the machine during the other tests.
@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cache = tmp_path_factory.mktemp("e2e-kubectl-cache")
    external = os.environ.get("KATTLE_E2E_KUBECONFIG")
    if external:
        kubectl = Kubectl(Path(shutil.which("kubectl") or "kubectl"), Path(external), cache)
        yield Cluster(
            kubectl,
            Path(shutil.which("helm") or "helm"),
            os.environ.get("KATTLE_E2E_IMAGE", "kattle:e2e"),
            os.environ.get("KATTLE_E2E_HANDLER_NODE_IMAGE", "kattle-handler-node:e2e"),
            os.environ.get("KATTLE_E2E_HANDLER_PYTHON_IMAGE", "kattle-handler-python:e2e"),
        )
        return
    reason = node_module.why_not_here()
    if reason and os.environ.get(REQUIRE_VARIABLE):
        # CI on a machine that can run a node: a skip there would hide a broken node.
        pytest.fail(f"{REQUIRE_VARIABLE} is set, and {reason}", pytrace=False)
    if reason:
        pytest.skip(reason)
    # Before minutes of builds: there is room for one node on a machine.
    reason = node_module.already_up()
    if reason:
        pytest.fail(reason, pytrace=False)
    _build("binaries.sh", "ensure")
    _build("binaries.sh", "ensure", "--node")
    _build("images.sh", "ensure")
    before = node_module.host_snapshot()
    node = node_module.Node(Path(tempfile.mkdtemp(prefix="kattle-e2e-node-")), die_with_parent=True)
    try:
        kubeconfig = node.up()
        bins = load_hack_module("controlplane").binaries_dir()
        yield Cluster(
            Kubectl(bins / "kubectl", kubeconfig, cache),
            bins / "helm",
            LOCAL_IMAGE,
            LOCAL_HANDLER_NODE_IMAGE,
            LOCAL_HANDLER_PYTHON_IMAGE,
            node=node,
        )
    finally:
        node.down()
    changed = node_module.snapshot_difference(before, node_module.host_snapshot())
    assert not changed, "the node left the host changed:\n" + "\n".join(changed)
