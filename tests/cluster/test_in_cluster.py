"""Kattle as its users run it: `helm install` of the chart with the image built from the
Dockerfile, the operator and the handlers in pods, handlers reached through Services and
cluster DNS with signed requests, driven by `kubectl` and `kubectl kattle` only; then the
faults a cluster has (pods deleted, a rolling upgrade, a standby taking over, a kubelet
restart) and `helm uninstall`.

The tests run in file order and share one release: each leaves it as the next expects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import (
    NAMESPACE,
    OBJECTS,
    OPERATOR_SELECTOR,
    RELEASE,
    Cluster,
    describe,
    transitions_once,
    wait_for,
)
from tests.support.paths import REPO

CHART = REPO / "charts" / "kattle"
HERE = Path(__file__).parent

# A type of the tests' own: `chore.work` calls the slow handler, which sleeps `data.sleep`.
CHORE = """
apiVersion: kattle.dev/v1alpha1
kind: ResourceDefinition
metadata: {name: chore}
spec:
  names: {kind: Chore, plural: chores}
  initialState: ready
---
apiVersion: kattle.dev/v1alpha1
kind: ProcessDefinition
metadata: {name: chore.work}
spec:
  resourceType: chore
  start: [ready]
  transitioning: working
  done: ready
  trigger: manual
---
apiVersion: kattle.dev/v1alpha1
kind: ProcessHandler
metadata: {name: chore-slow}
spec:
  processes: [chore.work]
  clientConfig:
    service: {namespace: kattle-system, name: slow-handler, port: 8080, path: /work, scheme: http}
  timeoutSeconds: 60
  retryLimit: 20
"""


def _slow_handler(image: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "slow-handler"}
    script = (HERE / "slow_handler.py").read_text()
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "slow-handler", "namespace": NAMESPACE},
            "data": {"slow_handler.py": script},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "slow-handler", "namespace": NAMESPACE},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "handler",
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["python", "/handler/slow_handler.py", "8080"],
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/", "port": "http"},
                                    "periodSeconds": 1,
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "code", "mountPath": "/handler"}],
                            }
                        ],
                        "volumes": [{"name": "code", "configMap": {"name": "slow-handler"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "slow-handler", "namespace": NAMESPACE},
            "spec": {"selector": labels, "ports": [{"port": 8080, "targetPort": "http"}]},
        },
    ]


def _node_handler(image: str) -> list[dict[str, Any]]:
    docs = list(yaml.safe_load_all((REPO / "samples/handlers/node/kubernetes.yaml").read_text()))
    for doc in docs:
        if doc["kind"] == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            container["image"] = image
            container["imagePullPolicy"] = "IfNotPresent"
        if doc["kind"] != "ProcessHandler":
            doc["metadata"]["namespace"] = NAMESPACE
    return docs


def _install_values(cluster: Cluster) -> list[str]:
    return [
        "--set",
        f"image.repository={cluster.image_repository}",
        "--set",
        f"image.tag={cluster.image_tag}",
        "--set",
        "image.pullPolicy=IfNotPresent",
        "--set",
        "samples.enabled=true",
        # The sample handler service's own image, on the slim SDK.
        "--set",
        f"samples.handlers.image.repository={cluster.handler_python_image.rsplit(':', 1)[0]}",
        "--set",
        f"samples.handlers.image.tag={cluster.handler_python_image.rsplit(':', 1)[1]}",
        "--set",
        "samples.handlers.image.pullPolicy=IfNotPresent",
        # A standby takes over sooner than the default 30 s.
        "--set",
        "operator.extraArgs={--peering-lifetime=15}",
    ]


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[Cluster]:
    cluster.helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        *_install_values(cluster),
        "--wait",
        "--timeout=180s",
    )
    cluster.kubectl.run("create", "namespace", OBJECTS)
    for manifest in (*_slow_handler(cluster.image), *_node_handler(cluster.handler_node_image)):
        cluster.kubectl.apply(manifest)
    cluster.kubectl.apply(CHORE)
    for deployment in ("slow-handler", "kattle-handler-node"):
        cluster.kubectl.run(
            "rollout", "status", "-n", NAMESPACE, f"deployment/{deployment}", "--timeout=120s"
        )
    cluster.kubectl.run(
        "wait", "--for=condition=Ready", "--timeout=120s", "rd/instance", "rd/chore"
    )
    try:
        yield cluster
    finally:
        if cluster.helm("status", RELEASE, "-n", NAMESPACE, check=False).returncode == 0:
            print(describe(cluster))
            cluster.kubectl.run("delete", "namespace", OBJECTS, "--wait=false", check=False)
            cluster.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)


def _upgrade(cluster: Cluster, *values: str) -> None:
    """`helm upgrade` with the install's values plus `values` (name=value each)."""
    sets = [word for value in values for word in ("--set", value)]
    cluster.helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        *_install_values(cluster),
        *sets,
        "--wait",
        "--timeout=180s",
    )


def _ready_operators(cluster: Cluster, count: int) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        pods = cluster.ready_pods(NAMESPACE, OPERATOR_SELECTOR)
        return pods if len(pods) == count else None

    pods: list[dict[str, Any]] = wait_for(f"{count} Ready operator pod(s)", ready)
    return pods


def _operator_pod(cluster: Cluster) -> dict[str, Any]:
    return _ready_operators(cluster, 1)[0]


def test_the_operator_pod_runs_the_images_entrypoint_restricted_and_ready(
    release: Cluster,
) -> None:
    pod = _operator_pod(release)
    container = pod["spec"]["containers"][0]
    assert container["image"] == release.image
    assert "command" not in container, "the chart must run the image's own ENTRYPOINT"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # The API server's Pod Security admission, asked whether every pod of the namespace
    # (the operator, the sample handlers, the tests' own) meets the restricted profile.
    dry_run = release.kubectl.run(
        "label",
        "--overwrite",
        "namespace",
        NAMESPACE,
        "pod-security.kubernetes.io/enforce=restricted",
        "--dry-run=server",
    )
    assert "violate" not in dry_run.stderr, dry_run.stderr


def test_an_instance_lives_its_life_through_handler_pods(release: Cluster) -> None:
    release.kubectl.apply(
        {
            "apiVersion": "resources.kattle.dev/v1",
            "kind": "Instance",
            "metadata": {"name": "web-1", "namespace": OBJECTS},
            "spec": {"image": "nginx:1.27"},
        }
    )
    # instance.create: the sample handler pod allocates an IP, through its Service.
    release.wait_state("instance", "web-1", "stopped")
    instance = release.kubectl.get("instance", "web-1", "-n", OBJECTS)
    assert instance["status"].get("ip"), instance["status"]
    for process, state in (
        ("start", "running"),
        ("stop", "stopped"),
        ("start", "running"),
        ("restart", "running"),
    ):
        out = release.kattle(
            "run", f"instance.{process}", "instance/web-1", "-n", OBJECTS, "--wait"
        ).stdout
        assert out.rstrip().endswith("Succeeded (Done)"), out
        assert release.state("instance", "web-1") == state
    # instance.restart called the Node.js handler pod, which checked the request's signature.
    status = release.kubectl.get("instance", "web-1", "-n", OBJECTS)["status"]
    assert status.get("greeting") == "hello from node, web-1", status
    release.kattle("run", "instance.stop", "instance/web-1", "-n", OBJECTS, "--wait")
    release.kubectl.run("delete", "instance", "web-1", "-n", OBJECTS, "--timeout=120s")
    events = release.kubectl.run(
        "get",
        "events",
        "-n",
        OBJECTS,
        "--field-selector",
        "involvedObject.name=web-1",
        "-o",
        "jsonpath={.items[*].message}",
    ).stdout
    assert "instance.remove: stopped -> removing -> removed" in events, events
    assert "instance.purge: removed -> purging -> purged" in events, events


def test_a_forbidden_image_is_refused_by_the_pre_listener_and_on_error_stops_it(
    release: Cluster,
) -> None:
    forbidden = yaml.safe_load((REPO / "samples/objects/forbidden-1.yaml").read_text())
    forbidden["metadata"]["namespace"] = OBJECTS
    release.kubectl.apply(forbidden)
    release.wait_state("instance", "forbidden-1", "stopped")
    started = release.kattle(
        "run", "instance.start", "instance/forbidden-1", "-n", OBJECTS, "--wait", check=False
    )
    assert started.returncode != 0, started.stdout
    assert "is not allowed to start" in started.stdout, started.stdout
    release.wait_state("instance", "forbidden-1", "stopped")
    release.kubectl.run("delete", "instance", "forbidden-1", "-n", OBJECTS, "--timeout=120s")


def test_metrics_are_scraped_through_the_metrics_service_by_name(release: Cluster) -> None:
    url = f"http://{RELEASE}-metrics.{NAMESPACE}.svc.cluster.local:8080/metrics"
    script = (
        f"import urllib.request;print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    )
    release.kubectl.run(
        "run",
        "scrape",
        "-n",
        OBJECTS,
        "--restart=Never",
        f"--image={release.image}",
        "--image-pull-policy=IfNotPresent",
        "--command",
        "--",
        "python",
        "-c",
        script,
    )
    release.kubectl.run(
        "wait",
        "-n",
        OBJECTS,
        "pod/scrape",
        "--timeout=120s",
        "--for=jsonpath={.status.phase}=Succeeded",
    )
    metrics = release.logs(OBJECTS, "scrape")
    release.kubectl.run("delete", "pod", "scrape", "-n", OBJECTS, "--wait=false")
    assert "kattle_process_runs_finished_total{" in metrics, metrics[:2000]
    assert 'process="instance.start"' in metrics, metrics[:2000]


def _chore(release: Cluster, name: str) -> None:
    release.kubectl.apply(
        {
            "apiVersion": "resources.kattle.dev/v1",
            "kind": "Chore",
            "metadata": {"name": name, "namespace": OBJECTS},
        }
    )
    release.wait_state("chore", name, "ready")


def _slow_handler_pod(release: Cluster) -> str:
    pods = wait_for(
        "a Ready slow handler pod",
        lambda: release.ready_pods(NAMESPACE, "app.kubernetes.io/name=slow-handler"),
    )
    return str(pods[0]["metadata"]["name"])


def _wait_call_in_flight(release: Cluster, run: str) -> str:
    """Waits until the slow handler has received a call of `run`; returns its pod."""

    def receiving() -> str | None:
        for pod in release.ready_pods(NAMESPACE, "app.kubernetes.io/name=slow-handler"):
            if f"received {run} " in release.logs(NAMESPACE, pod["metadata"]["name"]):
                return str(pod["metadata"]["name"])
        return None

    pod: str = wait_for(f"the slow handler to receive {run}", receiving)
    return pod


def _assert_ran_once(release: Cluster, run: str) -> dict[str, Any]:
    status = release.wait_run_ended(run)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=2)
    seen = transitions_once(status)
    assert seen == [("state", "ready", "working"), ("state", "working", "ready")], seen
    return status


def test_the_operator_pod_deleted_mid_run_is_replaced_and_the_run_resumes(
    release: Cluster,
) -> None:
    _chore(release, "c-operator")
    old = _operator_pod(release)["metadata"]["name"]
    run = release.run("chore.work", "chore/c-operator", "sleep=4")
    _wait_call_in_flight(release, run)
    release.kubectl.run("delete", "pod", "-n", NAMESPACE, old, "--wait=false")
    status = _assert_ran_once(release, run)
    new = _operator_pod(release)["metadata"]["name"]
    assert new != old
    # The new pod called the handler again, with the same idempotency key.
    calls = status["handlerCalls"]
    assert len({c["idempotencyKey"] for c in calls}) == 1, calls


def test_a_handler_pod_killed_mid_call_is_retried_until_its_service_has_endpoints(
    release: Cluster,
) -> None:
    _chore(release, "c-handler")
    run = release.run("chore.work", "chore/c-handler", "sleep=3")
    pod = _wait_call_in_flight(release, run)
    release.kubectl.run("delete", "pod", "-n", NAMESPACE, pod, "--grace-period=0", "--force")
    status = _assert_ran_once(release, run)
    outcomes = [c.get("outcome") for c in status["handlerCalls"]]
    assert len(outcomes) >= 2, status["handlerCalls"]
    assert outcomes[-1] == "Succeeded", status["handlerCalls"]


def test_helm_upgrade_rolls_the_operator_without_losing_a_run(release: Cluster) -> None:
    _chore(release, "c-upgrade")
    old = _operator_pod(release)["metadata"]["name"]
    run = release.run("chore.work", "chore/c-upgrade", "sleep=5")
    _wait_call_in_flight(release, run)
    _upgrade(release, "operator.logFormat=text")
    _assert_ran_once(release, run)
    pod = _operator_pod(release)
    assert pod["metadata"]["name"] != old
    assert "--log-format=text" in pod["spec"]["containers"][0]["args"], pod["spec"]


def test_with_two_replicas_the_standby_takes_over_when_the_active_pod_dies(
    release: Cluster,
) -> None:
    _upgrade(release, "replicas=2")
    pods = _ready_operators(release, 2)
    # The oldest replica is the active one (docs/operator.md).
    active = min(pods, key=lambda p: p["status"]["startTime"])["metadata"]["name"]
    _chore(release, "c-standby")
    release.kubectl.run("delete", "pod", "-n", NAMESPACE, active, "--grace-period=0", "--force")
    run = release.run("chore.work", "chore/c-standby", "sleep=0")
    _assert_ran_once(release, run)
    _upgrade(release)


def test_a_kubelet_restart_keeps_pods_running_and_runs_going(release: Cluster) -> None:
    if release.node is None:
        pytest.skip("only the local node can restart its kubelet")
    before = {
        p["metadata"]["name"]: p["status"]["containerStatuses"][0]["restartCount"]
        for p in release.pods(NAMESPACE, "app.kubernetes.io/part-of=kattle")
    }
    _chore(release, "c-kubelet")
    run = release.run("chore.work", "chore/c-kubelet", "sleep=3")
    _wait_call_in_flight(release, run)
    release.node.restart_kubelet()
    _assert_ran_once(release, run)
    wait_for("the node to be Ready again", release.node.node_ready)
    after = {
        p["metadata"]["name"]: p["status"]["containerStatuses"][0]["restartCount"]
        for p in release.pods(NAMESPACE, "app.kubernetes.io/part-of=kattle")
    }
    assert after == before


def test_helm_uninstall_leaves_the_crds_and_nothing_else(release: Cluster) -> None:
    # Objects first: their finalizers need the operator (the README says so).
    release.kubectl.run("delete", "chores,instances", "--all", "-n", OBJECTS, "--timeout=120s")
    release.kubectl.run("delete", "namespace", OBJECTS, "--timeout=120s")
    for manifest in (*_slow_handler(release.image), *_node_handler(release.handler_node_image)):
        release.kubectl.run(
            "delete",
            manifest["kind"],
            manifest["metadata"]["name"],
            *(["-n", NAMESPACE] if manifest["kind"] != "ProcessHandler" else []),
        )
    release.kubectl.run("delete", "-f", "-", stdin=CHORE)
    release.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout=120s")
    selector = f"app.kubernetes.io/instance={RELEASE}"

    def left() -> list[str]:
        return release.kubectl.run(
            "get",
            "all,configmaps,secrets,serviceaccounts,roles,rolebindings",
            "-n",
            NAMESPACE,
            "-l",
            selector,
            "-o",
            "name",
        ).stdout.split()

    # helm's --wait does not wait for the pods of the Deployments it deleted.
    wait_for("nothing of the release left in its namespace", lambda: not left() or None)
    cluster_wide = release.kubectl.run(
        "get",
        "clusterroles,clusterrolebindings,validatingadmissionpolicies,"
        "validatingadmissionpolicybindings",
        "-l",
        selector,
        "-o",
        "name",
    ).stdout.split()
    assert cluster_wide == [], cluster_wide
    crds = release.kubectl.run("get", "crd", "-o", "name").stdout.split()
    kattle = {
        f"customresourcedefinition.apiextensions.k8s.io/{kind}.kattle.dev"
        for kind in (
            "resourcedefinitions",
            "processdefinitions",
            "processhandlers",
            "processinstances",
        )
    }
    assert kattle <= set(crds), crds
    print("left after uninstall:", crds)
