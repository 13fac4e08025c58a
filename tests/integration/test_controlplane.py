"""The local control plane is a real Kubernetes API: TLS, RBAC, CRDs, watches, controllers."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch

from tests.integration.conftest import controlplane_module
from tests.support.kube import Kubectl
from tests.support.paths import HACK


def test_readyz_answers_ok(kubectl: Kubectl) -> None:
    assert kubectl.run("get", "--raw", "/readyz").stdout.strip() == "ok"


def test_rbac_is_enforced(kubectl: Kubectl) -> None:
    denied = kubectl.run("get", "pods", "--as=someone", check=False)
    assert denied.returncode != 0
    assert 'User "someone" cannot list resource "pods"' in denied.stderr
    # The admin is in system:masters, so the same request is allowed without impersonation.
    assert kubectl.run("auth", "can-i", "list", "pods").stdout.strip() == "yes"
    assert (
        kubectl.run("auth", "can-i", "list", "pods", "--as=someone", check=False).stdout.strip()
        == "no"
    )


def test_kubeconfig_is_absolute_and_self_contained(kubeconfig: Path) -> None:
    assert kubeconfig.is_absolute()
    text = kubeconfig.read_text()
    assert "certificate-authority-data" in text
    assert "client-key-data" in text


def _crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def test_crd_becomes_established_and_objects_can_be_watched(
    kubectl: Kubectl, kubeconfig: Path
) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.example.com"
    kubectl.apply(_crd(group))
    kubectl.run("wait", "--for=condition=Established", "--timeout=30s", f"crd/widgets.{group}")

    api = config.new_client_from_config(config_file=str(kubeconfig))
    custom = client.CustomObjectsApi(api)
    listing = custom.list_namespaced_custom_object(group, "v1", "default", "widgets")
    stream = watch.Watch().stream(
        custom.list_namespaced_custom_object,
        group,
        "v1",
        "default",
        "widgets",
        resource_version=listing["metadata"]["resourceVersion"],
        timeout_seconds=20,
    )
    custom.create_namespaced_custom_object(
        group,
        "v1",
        "default",
        "widgets",
        {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 3},
        },
    )
    events = []
    for event in stream:
        events.append((event["type"], event["object"]["metadata"]["name"]))
        break
    assert events == [("ADDED", "w1")]
    assert custom.get_namespaced_custom_object(group, "v1", "default", "widgets", "w1")["spec"] == {
        "size": 3
    }
    kubectl.run("delete", "crd", f"widgets.{group}", "--wait=true")


def test_garbage_collection_runs(kubectl: Kubectl) -> None:
    """kube-controller-manager is there: owned objects go with their owner."""
    name = f"gc-{uuid.uuid4().hex[:6]}"
    owner = kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"},
        },
        "-o",
        "json",
    )
    uid = json.loads(owner.stdout)["metadata"]["uid"]
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"{name}-owned",
                "namespace": "default",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uid}
                ],
            },
        }
    )
    kubectl.run("delete", "configmap", name, "-n", "default")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if kubectl.run(
            "get", "configmap", f"{name}-owned", "-n", "default", check=False
        ).returncode:
            return
        time.sleep(0.5)
    pytest.fail("the owned ConfigMap was not garbage-collected within 30s")


def test_two_control_planes_run_side_by_side(bin_dir: Path, controlplane: Any) -> None:
    """A second plane gets its own ports and folder; stopping it leaves the first alone."""
    state = Path(tempfile.mkdtemp(prefix="kattle-test-second-"))
    second = controlplane_module.ControlPlane(
        state, bin_dir, controller_manager=False, die_with_parent=True
    )
    try:
        second.up()
        assert second.ports["apiserver"] != controlplane.ports["apiserver"]
        kubectl = [str(bin_dir / "kubectl"), "get", "--raw", "/readyz"]
        for plane in (controlplane, second):
            out = subprocess.run(
                [*kubectl, f"--kubeconfig={plane.kubeconfig}"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert out.stdout.strip() == "ok"
        pids = dict(second._processes())
    finally:
        second.down()
    assert not state.exists()
    for pid in pids.values():
        assert (
            not Path(f"/proc/{pid}").exists()
            or b"zombie" in Path(f"/proc/{pid}/status").read_bytes().lower()
        )
    out = subprocess.run(
        [
            str(bin_dir / "kubectl"),
            "get",
            "--raw",
            "/readyz",
            f"--kubeconfig={controlplane.kubeconfig}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "ok"


def test_the_shell_script_prints_the_kubeconfig_last_and_cleans_up(bin_dir: Path) -> None:
    up = subprocess.run(
        [str(HACK / "controlplane.sh"), "up", "--no-controller-manager"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert up.returncode == 0, up.stderr
    kubeconfig = Path(up.stdout.strip().splitlines()[-1])
    try:
        assert kubeconfig.is_file()
        ready = subprocess.run(
            [str(bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert ready.stdout.strip() == "ok"
    finally:
        down = subprocess.run(
            [str(HACK / "controlplane.sh"), "down", str(kubeconfig)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert down.returncode == 0, down.stderr
    assert not kubeconfig.parent.exists()


def test_down_refuses_a_folder_it_did_not_create(tmp_path: Path) -> None:
    down = subprocess.run(
        [str(HACK / "controlplane.sh"), "down", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert down.returncode == 1
    assert "is not a control plane started by this script" in down.stderr
    assert tmp_path.exists()
