"""Kattle as its users run it: `helm install` of the chart with the image built from the
Dockerfile, the operator and the handlers in pods, handlers reached through Services and
cluster DNS with signed requests, driven by `kubectl` and `kubectl kattle` only; then the
faults a cluster has (pods deleted, a rolling upgrade, a standby taking over, a kubelet
restart) and `helm uninstall`.

The tests run in file order and share one release: each leaves it as the next expects.
"""

from __future__ import annotations

import contextlib
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
from tests.support.paths import REPO, load_hack_module

CHART = REPO / "charts" / "kattle"
HERE = Path(__file__).parent
# Kattle's API, the kinds it generates, and Kopf's peering.
API_GROUPS = ("kattle.dev", "resources.kattle.dev", "kopf.dev")
# The slow handler's first answer to a call (`firstSleep`), in seconds: longer than an
# operator pod's termination grace period (the chart keeps Kubernetes' 30 s), so a pod
# killed mid-call can never finish it, and shorter than the registration's timeoutSeconds.
FIRST_CALL_SECONDS = 50

# A type of the tests' own: `chore.work` calls the slow handler (`data.sleep`, `data.firstSleep`).
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
                                "imagePullPolicy": "Never",
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
            container["imagePullPolicy"] = "Never"
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
        "image.pullPolicy=Never",
        "--set",
        "samples.enabled=true",
        # The sample handler service's own image, on the slim SDK.
        "--set",
        f"samples.handlers.image.repository={cluster.handler_python_image.rsplit(':', 1)[0]}",
        "--set",
        f"samples.handlers.image.tag={cluster.handler_python_image.rsplit(':', 1)[1]}",
        "--set",
        "samples.handlers.image.pullPolicy=Never",
        # A standby takes over sooner than the default 30 s.
        "--set",
        "operator.extraArgs={--peering-lifetime=15}",
    ]


def _key(item: dict[str, Any]) -> str:
    """`Kind.group namespace/name` of an object, e.g. `ServiceAccount kattle-system/default`."""
    group = item["apiVersion"].rpartition("/")[0]
    kind = f"{item['kind']}.{group}" if group else item["kind"]
    meta = item["metadata"]
    return f"{kind} {meta.get('namespace', '')}/{meta['name']}"


def _list(cluster: Cluster, kinds: list[str], *flags: str) -> set[str]:
    if not kinds:
        return set()
    return {_key(item) for item in cluster.kubectl.get(",".join(kinds), *flags)["items"]}


def _kinds(cluster: Cluster, *flags: str) -> list[str]:
    return cluster.kubectl.run("api-resources", "--verbs=list", "-o", "name", *flags).stdout.split()


def _footprint(cluster: Cluster) -> set[str]:
    """What a release may leave in the cluster, as `_key`s: the CRDs, the cluster-wide RBAC
    and admission objects, every object of Kattle's and Kopf's API groups (also of the
    generated kinds, in every namespace), and the release's namespace with all it holds
    but Events (they expire by themselves)."""
    found = _list(
        cluster,
        [
            "customresourcedefinitions.apiextensions.k8s.io",
            "clusterroles.rbac.authorization.k8s.io",
            "clusterrolebindings.rbac.authorization.k8s.io",
            "validatingadmissionpolicies.admissionregistration.k8s.io",
            "validatingadmissionpolicybindings.admissionregistration.k8s.io",
            "validatingwebhookconfigurations.admissionregistration.k8s.io",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io",
        ],
    )
    for group in API_GROUPS:
        found |= _list(cluster, _kinds(cluster, f"--api-group={group}"), "-A")
    if cluster.kubectl.run("get", "namespace", NAMESPACE, check=False).returncode == 0:
        found.add(f"Namespace /{NAMESPACE}")
        kinds = [k for k in _kinds(cluster, "--namespaced=true") if k.split(".")[0] != "events"]
        found |= _list(cluster, kinds, "-n", NAMESPACE)
    return found


@pytest.fixture(scope="module")
def before_install(cluster: Cluster) -> set[str]:
    """The footprint before `helm install`; `helm uninstall` is checked against it."""
    return _footprint(cluster)


@pytest.fixture(scope="module")
def release(cluster: Cluster, before_install: set[str]) -> Iterator[Cluster]:
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


def _python_pod(release: Cluster, name: str, script: str) -> str:
    """Runs `script` with the Kattle image's Python in a pod of its own; returns its output."""
    release.kubectl.run(
        "run",
        name,
        "-n",
        OBJECTS,
        "--restart=Never",
        f"--image={release.image}",
        "--image-pull-policy=Never",
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
        f"pod/{name}",
        "--timeout=120s",
        "--for=jsonpath={.status.phase}=Succeeded",
    )
    out = release.logs(OBJECTS, name)
    release.kubectl.run("delete", "pod", name, "-n", OBJECTS, "--wait=false")
    return out


def test_metrics_are_scraped_through_the_metrics_service_by_name(release: Cluster) -> None:
    url = f"http://{RELEASE}-metrics.{NAMESPACE}.svc.cluster.local:8080/metrics"
    script = (
        f"import urllib.request;print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    )
    metrics = _python_pod(release, "scrape", script)
    assert "kattle_process_runs_finished_total{" in metrics, metrics[:2000]
    assert 'process="instance.start"' in metrics, metrics[:2000]


# Run in a pod: what routes it has, which nameservers, and whether an outside name resolves.
# Nothing is sent anywhere but to the cluster's DNS Service: CoreDNS answers, or not.
CONTAINMENT_PROBE = """
import json, socket
routes = [line.split() for line in open("/proc/net/route").read().splitlines()[1:]]
nameservers = [
    line.split()[1] for line in open("/etc/resolv.conf") if line.startswith("nameserver")
]
try:
    outside = sorted({a[4][0] for a in socket.getaddrinfo("kattle.dev.", None)})
except OSError as error:
    outside = str(error)
print(json.dumps({
    "default": [r for r in routes if r[1] == "00000000"],
    "nameservers": nameservers,
    "outside": outside,
}))
"""


def test_a_pod_on_the_local_node_has_no_way_out(release: Cluster) -> None:
    """The network rule, live (docs/cluster.md): no default route, only the cluster's DNS,
    which resolves no name outside the cluster."""
    if release.node is None:
        pytest.skip("the containment is the local node's; other clusters have their own rules")
    seen = json.loads(_python_pod(release, "containment", CONTAINMENT_PROBE).strip())
    assert seen["default"] == [], seen
    assert seen["nameservers"] == [load_hack_module("node").CLUSTER_DNS], seen
    assert isinstance(seen["outside"], str), f"kattle.dev. resolved in a pod: {seen}"


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


def _calls_received(release: Cluster, run: str) -> list[str]:
    """The idempotency keys of the calls of `run` the slow handler received, in order."""
    keys = []
    for pod in release.pods(NAMESPACE, "app.kubernetes.io/name=slow-handler"):
        for line in release.logs(NAMESPACE, pod["metadata"]["name"]).splitlines():
            words = line.split()
            if words[:2] == ["received", run] and words[-2:-1] == ["key"]:
                keys.append(words[-1])
    return keys


def _ended_by(release: Cluster, run: str) -> str:
    """The operator pod that ended `run`. The replica that ends a run posts its end Event
    under a name of its own (`<run>.<uid[:8]>`, runner/endings.py: posted once, a resumed
    run cannot post a second), and an Event names the pod that posted it
    (`reportingInstance`: the chart's POD_ID)."""
    meta = release.kubectl.get("pi", run, "-n", OBJECTS)["metadata"]
    uid = (meta.get("annotations") or {}).get("kattle.dev/run-seed") or meta["uid"]

    def event() -> dict[str, Any] | None:
        got = release.kubectl.run(
            "get",
            "events.events.k8s.io",
            f"{run}.{uid[:8]}",
            "-n",
            OBJECTS,
            "-o",
            "json",
            check=False,
        )
        return json.loads(got.stdout) if got.returncode == 0 else None

    found: dict[str, Any] = wait_for(f"the end Event of {run}", event)
    return str(found.get("reportingInstance"))


def _assert_resumed(release: Cluster, run: str, by: str) -> None:
    """`run` was called again with its first call's idempotency key (the first call was
    never answered while its caller lived) and ended by pod `by`."""
    keys = _calls_received(release, run)
    assert len(keys) >= 2, f"the handler was called once, so nothing resumed: {keys}"
    assert len(set(keys)) == 1, f"a resumed call must keep its idempotency key: {keys}"
    assert _ended_by(release, run) == by


def test_the_operator_pod_deleted_mid_run_is_replaced_and_the_run_resumes(
    release: Cluster,
) -> None:
    _chore(release, "c-operator")
    pod = _operator_pod(release)
    old = pod["metadata"]["name"]
    # The deleted pod has its grace period to stop in: too short to see its call answered.
    assert pod["spec"]["terminationGracePeriodSeconds"] < FIRST_CALL_SECONDS, pod["spec"]
    run = release.run(
        "chore.work", "chore/c-operator", "sleep=0", f"firstSleep={FIRST_CALL_SECONDS}"
    )
    _wait_call_in_flight(release, run)
    release.kubectl.run("delete", "pod", "-n", NAMESPACE, old, "--wait=false")
    _assert_ran_once(release, run)
    new = _operator_pod(release)["metadata"]["name"]
    assert new != old
    # The Deployment's new pod called the handler again, with the same key, and ended the run.
    _assert_resumed(release, run, by=new)


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


def _active_and_standby(release: Cluster) -> tuple[str, str]:
    """With two Ready replicas, and no other operator pod left (not even a terminating one
    of the rollout, which could still drive runs), the active one and the standby, as
    their Kopf peering object has them: the active one has the higher priority."""
    pods = _ready_operators(release, 2)
    names = {p["metadata"]["name"] for p in pods}

    def every_operator_pod() -> set[str]:
        found = release.kubectl.get("pods", "-n", NAMESPACE, "-l", OPERATOR_SELECTOR)
        return {p["metadata"]["name"] for p in found["items"]}

    wait_for("the rollout's old operator pods to be gone", lambda: every_operator_pod() == names)
    args = pods[0]["spec"]["containers"][0]["args"]
    peering = next(a.split("=", 1)[1] for a in args if a.startswith("--peering="))

    def priorities() -> dict[str, int] | None:
        peers = release.kubectl.get("clusterkopfpeering", peering).get("status") or {}
        found = {n: int(p["priority"]) for n, p in peers.items() if n in names and p}
        return found if len(found) == 2 else None

    found: dict[str, int] = wait_for("both replicas in the peering object", priorities)
    active, standby = sorted(found, key=found.__getitem__, reverse=True)
    return active, standby


def test_with_two_replicas_the_standby_takes_over_when_the_active_pod_dies(
    release: Cluster,
) -> None:
    _upgrade(release, "replicas=2")
    active, standby = _active_and_standby(release)
    _chore(release, "c-standby")
    run = release.run(
        "chore.work", "chore/c-standby", "sleep=0", f"firstSleep={FIRST_CALL_SECONDS}"
    )
    # The active replica's call is in flight; it dies at once. The Deployment starts a
    # replacement, which is younger than the standby and so waits behind it.
    _wait_call_in_flight(release, run)
    release.kubectl.run("delete", "pod", "-n", NAMESPACE, active, "--grace-period=0", "--force")
    _assert_ran_once(release, run)
    # The standby, a pod from before the kill, resumed the run and ended it.
    _assert_resumed(release, run, by=standby)
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


def test_helm_uninstall_leaves_the_crds_and_nothing_else(
    release: Cluster, before_install: set[str]
) -> None:
    """What docs/cluster.md ("What `helm uninstall` leaves") says is left, exactly: the
    chart's crds/ (Kattle's four CRDs and Kopf's two peering CRDs); the CRDs generated for
    ResourceDefinitions whose deletionPolicy is Orphan (the default), the samples' and the
    tests' own; the process log of the release namespace; and that namespace, which Helm
    never deletes, holding only what Kubernetes puts in every namespace."""
    left = {
        yaml.safe_load(path.read_text())["metadata"]["name"]
        for path in (CHART / "crds").glob("*.yaml")
    }
    assert len(left) == 6, left
    left |= {
        f"{d['spec']['names']['plural']}.{d['spec']['group']}"
        for d in release.kubectl.get("resourcedefinitions.kattle.dev")["items"]
        if d["spec"].get("deletionPolicy", "Orphan") == "Orphan"
    }
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
    runs = _list(release, ["processinstances.kattle.dev"], "-n", NAMESPACE)
    release.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout=120s")
    expected = (
        before_install
        | {f"CustomResourceDefinition.apiextensions.k8s.io /{name}" for name in left}
        | runs
        | {
            f"Namespace /{NAMESPACE}",
            f"ServiceAccount {NAMESPACE}/default",
            f"ConfigMap {NAMESPACE}/kube-root-ca.crt",
        }
    )

    def difference() -> list[str]:
        found = _footprint(release)
        return [f"+ {k}" for k in sorted(found - expected)] + [
            f"- {k}" for k in sorted(expected - found)
        ]

    changed: list[str] = []

    def settled() -> bool:
        changed[:] = difference()
        return not changed

    # helm's --wait does not wait for what the garbage collector deletes after it (the
    # Deployments' pods, the Services' EndpointSlices).
    with contextlib.suppress(AssertionError):
        wait_for("what helm uninstall deletes to be gone", settled)
    assert not changed, "after helm uninstall, against before install plus what the docs say:\n" + (
        "\n".join(changed)
    )
