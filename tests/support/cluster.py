"""A cluster that runs pods, for the end-to-end tests in tests/cluster.

Two ways to get one, with the same tests on both:
- the local node (hack/node.py, root only): the images hack/images.sh built from the
  Dockerfiles, loaded into the node's containerd;
- any cluster named by KATTLE_E2E_KUBECONFIG, with the images already loaded and named by
  KATTLE_E2E_IMAGE, KATTLE_E2E_HANDLER_NODE_IMAGE and KATTLE_E2E_HANDLER_PYTHON_IMAGE
  (hack/kind-e2e.sh does this for kind).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.kube import Kubectl

RELEASE = "kattle"
NAMESPACE = "kattle-system"
OBJECTS = "e2e"
OPERATOR_SELECTOR = "app.kubernetes.io/name=kattle-operator"
LOCAL_IMAGE = "localhost/kattle/kattle:dev"
LOCAL_HANDLER_NODE_IMAGE = "localhost/kattle/handler-node:dev"
LOCAL_HANDLER_PYTHON_IMAGE = "localhost/kattle/handler-python:dev"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    """Polls `check` until it returns something truthy; fails naming `what` and its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class Cluster:
    kubectl: Kubectl
    helm_binary: Path
    image: str
    handler_node_image: str
    # The chart's sample handler service (samples/handlers/Dockerfile, on the slim SDK).
    handler_python_image: str
    # The local node, for faults only it can make (a kubelet restart); None on other clusters.
    node: Any | None = None

    @property
    def image_repository(self) -> str:
        return self.image.rsplit(":", 1)[0]

    @property
    def image_tag(self) -> str:
        return self.image.rsplit(":", 1)[1]

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubectl.kubeconfig)}
        result = subprocess.run(
            [str(self.helm_binary), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def kattle(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`kubectl kattle ...`, the plugin as a user runs it: found on PATH, configured by
        KUBECONFIG (kubectl passes no flags to plugins)."""
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubectl.kubeconfig),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
        result = subprocess.run(
            [str(self.kubectl.binary), "kattle", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl kattle {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
            )
        return result

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.kubectl.get("pods", "-n", namespace, "-l", selector)[
            "items"
        ]
        return [p for p in found if not p["metadata"].get("deletionTimestamp")]

    def ready_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return [p for p in self.pods(namespace, selector) if _ready(p)]

    def operator_pods(self) -> list[dict[str, Any]]:
        return self.pods(NAMESPACE, OPERATOR_SELECTOR)

    def logs(self, namespace: str, pod: str) -> str:
        return self.kubectl.run("logs", "-n", namespace, pod, check=False).stdout

    def run(self, process: str, target: str, *data: str) -> str:
        """Starts a run without waiting; returns its name."""
        flags = [f"--data={d}" for d in data]
        out = self.kattle("run", process, target, "-n", OBJECTS, *flags).stdout
        # "processinstance.kattle.dev/NAME created"
        return out.split()[0].split("/", 1)[1]

    def run_status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.kubectl.get("pi", name, "-n", OBJECTS).get("status") or {}
        return status

    def wait_run_ended(self, name: str, timeout: float = 180.0) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            status = self.run_status(name)
            return status if status.get("phase") in ("Succeeded", "Failed", "Canceled") else None

        status: dict[str, Any] = wait_for(f"run {name} to end", ended, timeout)
        return status

    def state(self, kind: str, name: str) -> str:
        got = self.kubectl.run(
            "get", kind, name, "-n", OBJECTS, "-o", "jsonpath={.status.state}", check=False
        )
        return got.stdout.strip()

    def wait_state(self, kind: str, name: str, state: str, timeout: float = 120.0) -> None:
        wait_for(f"{kind}/{name} to be {state}", lambda: self.state(kind, name) == state, timeout)


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def transitions_once(status: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The run's (field, from, to) transitions; the caller asserts none repeats."""
    return [(t["field"], t["from"], t["to"]) for t in status.get("transitions", [])]


def describe(cluster: Cluster) -> str:
    """What a failed test should print: pods, runs and the operator's last log lines."""
    parts = [
        cluster.kubectl.run("get", "pods", "-A", "-o", "wide", check=False).stdout,
        cluster.kubectl.run("get", "pi", "-A", check=False).stdout,
    ]
    for pod in cluster.operator_pods():
        parts.append(cluster.logs(NAMESPACE, pod["metadata"]["name"])[-3000:])
    return "\n".join(parts)


def json_dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
