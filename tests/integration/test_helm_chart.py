"""The Helm chart: it lints, renders, installs, and its RBAC is exactly what the operator uses.

The chart is installed into a control plane of its own (with the API server's audit log on),
so its cluster-scoped objects (sample definitions, ClusterRoles) never meet other tests'.
The RBAC proof runs the real operator under the chart's ServiceAccount token through Cattle's
instance lifecycle and more, then reads the audit log: no request was forbidden, and every
(group, resource, verb) the chart grants was used, so removing any rule breaks something.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import controlplane_module
from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.paths import REPO, SAMPLES
from tests.support.world import wait_for

CHART = REPO / "charts" / "kattle"
RELEASE = "kattle"
NAMESPACE = "kattle-system"
HOST = "127.0.0.1"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:{RELEASE}"
# Values that switch every optional rule on: peering needs more than one replica.
RBAC_VALUES = ["--set", "replicas=2", "--set", "samples.enabled=true"]
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


@pytest.fixture(scope="module")
def helm(bin_dir: Path) -> Path:
    return bin_dir / "helm"


def _helm(helm: Path, *args: str, kubeconfig: Path | None = None) -> str:
    env = {**os.environ, "HELM_CACHE_HOME": tempfile.gettempdir() + "/kattle-helm-cache"}
    command = [str(helm), *args]
    if kubeconfig is not None:
        command.append(f"--kubeconfig={kubeconfig}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


# `helm template` renders for Kubernetes 1.20 unless told otherwise; the chart needs 1.30+.
KUBE_VERSION = "--kube-version=1.36.0"


def _render(helm: Path, *values: str) -> list[dict[str, Any]]:
    text = _helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--include-crds",
        KUBE_VERSION,
        *values,
    )
    return [doc for doc in yaml.safe_load_all(text) if doc]


NON_DEFAULT_VALUES = [
    [],
    ["--set", "samples.enabled=true"],
    [
        "--set",
        "replicas=3",
        "--set",
        "operator.watchNamespaces={team-a,team-b}",
        "--set",
        "rbac.resourceGroups={example.com,resources.kattle.dev}",
        "--set",
        "rbac.referenceNamespaces={secrets-here}",
        "--set",
        "operator.logFormat=text",
        "--set",
        "metrics.service.enabled=false",
        "--set",
        "serviceAccount.name=custom",
    ],
]


@pytest.mark.parametrize("values", NON_DEFAULT_VALUES, ids=["default", "samples", "custom"])
def test_the_chart_lints_and_renders(helm: Path, values: list[str]) -> None:
    _helm(helm, "lint", "--strict", str(CHART), *values)
    docs = _render(helm, *values)
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "CustomResourceDefinition"} <= kinds
    replicas = next(d for d in docs if d["kind"] == "Deployment")["spec"]["replicas"]
    assert ("PodDisruptionBudget" in kinds) == (replicas > 1)
    if "samples.enabled=true" in values:
        return  # the samples are the files in samples/, as users apply them by hand
    for doc in docs:  # standard labels on everything else the chart makes
        labels = doc["metadata"].get("labels") or {}
        if doc["kind"] != "CustomResourceDefinition":
            assert labels.get("app.kubernetes.io/part-of") == "kattle", doc["metadata"]
            assert labels.get("app.kubernetes.io/managed-by") == "Helm", doc["metadata"]


def test_an_older_cluster_is_refused_with_the_version_it_needs(helm: Path) -> None:
    result = subprocess.run(
        [str(helm), "template", RELEASE, str(CHART), "--kube-version=1.29.9"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "chart requires kubeVersion: >=1.30.0-0" in result.stderr


def test_name_overrides_env_and_extra_volumes_reach_the_pod(helm: Path) -> None:
    docs = _render(
        helm,
        "--set=fullnameOverride=ops",
        "--set=operator.env[0].name=HTTPS_PROXY",
        "--set=operator.env[0].value=http://proxy.internal:3128",
        "--set=extraVolumes[0].name=ca",
        "--set=extraVolumes[0].configMap.name=corporate-ca",
        "--set=extraVolumeMounts[0].name=ca",
        "--set=extraVolumeMounts[0].mountPath=/etc/ssl/corporate",
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == "ops"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"} in container["env"]
    assert {"name": "ca", "mountPath": "/etc/ssl/corporate"} in container["volumeMounts"]
    assert {"name": "ca", "configMap": {"name": "corporate-ca"}} in pod["volumes"]


def test_values_are_validated_by_the_schema(helm: Path) -> None:
    result = subprocess.run(
        [
            str(helm),
            "template",
            RELEASE,
            str(CHART),
            KUBE_VERSION,
            "--set",
            "operator.logFormat=xml",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "/operator/logFormat" in result.stderr


def test_the_pod_meets_the_restricted_pod_security_standard(helm: Path) -> None:
    for doc in _render(helm, "--set", "samples.enabled=true"):
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["resources"]["limits"]["memory"]


# -- a control plane of the chart's own ------------------------------------------------------


@pytest.fixture(scope="module")
def plane(bin_dir: Path) -> Iterator[Any]:
    state = Path(tempfile.mkdtemp(prefix="kattle-test-helm-"))
    control = controlplane_module.ControlPlane(
        state, bin_dir, controller_manager=False, die_with_parent=True, audit=True
    )
    try:
        control.up()
        yield control
    finally:
        control.down()


@pytest.fixture(scope="module")
def admin(plane: Any, bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(bin_dir / "kubectl", plane.kubeconfig, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def installed(helm: Path, plane: Any, admin: Kubectl) -> None:
    for values in NON_DEFAULT_VALUES:  # every rendering is accepted by a real API server
        rendered = _helm(
            helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, KUBE_VERSION, *values
        )
        admin.run("create", "namespace", NAMESPACE, check=False)
        admin.run("apply", "--server-side", "-f", str(CHART / "crds"))
        admin.run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        for namespace in ("team-a", "team-b", "secrets-here"):
            admin.run("create", "namespace", namespace, check=False)
        admin.run("apply", "--dry-run=server", "-f", "-", stdin=rendered)
    _helm(
        helm,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        *RBAC_VALUES,
        kubeconfig=plane.kubeconfig,
    )


def test_helm_install_succeeds(installed: None, admin: Kubectl, helm: Path, plane: Any) -> None:
    status = _helm(helm, "status", RELEASE, "-n", NAMESPACE, kubeconfig=plane.kubeconfig)
    assert "STATUS: deployed" in status
    assert "kubectl -n kattle-system rollout status deployment/kattle" in status
    assert admin.get("deployment", "-n", NAMESPACE, RELEASE)["spec"]["replicas"] == 2
    assert admin.get("rd", "instance")["spec"]["initialState"] == "requested"
    handler = admin.get("ph", "instance-allocate-ip")["spec"]["clientConfig"]["service"]
    assert handler["namespace"] == NAMESPACE


# -- the RBAC proof ---------------------------------------------------------------------------


def _token_kubeconfig(admin: Kubectl, plane: Any, path: Path) -> Path:
    token = admin.run("create", "token", RELEASE, "-n", NAMESPACE, "--duration=2h").stdout.strip()
    ca = base64.b64encode(plane.pki.path("ca.crt").read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": plane.server, "certificate-authority-data": ca}}
        ],
        "users": [{"name": "kattle", "user": {"token": token}}],
        "contexts": [{"name": "kattle", "context": {"cluster": "local", "user": "kattle"}}],
        "current-context": "kattle",
    }
    path.write_text(json.dumps(config))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sample_handlers(admin: Kubectl, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    secret = admin.get("secret", "-n", NAMESPACE, "kattle-sample-handlers-signing")
    key_file = tmp / "signing-key"
    key_file.write_bytes(base64.b64decode(secret["data"]["key"]))
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(SAMPLES / "handlers" / "app.py"),
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        env={**os.environ, "KATTLE_SIGNING_KEY_FILE": str(key_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the sample handler service did not start")


def _wait_state(admin: Kubectl, target: str, state: str) -> None:
    admin.run(
        "wait",
        f"--for=jsonpath={{.status.state}}={state}",
        "--timeout=60s",
        target,
        "-n",
        "default",
    )


def _run(admin: Kubectl, process: str, target: str) -> None:
    kattle = Path(sys.executable).parent / "kattle"
    result = subprocess.run(
        [str(kattle), "run", process, target, "-n", "default", "--wait", "--timeout=60"],
        env={**os.environ, "KUBECONFIG": str(admin.kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _create_runs(admin: Kubectl, process: str, name: str, count: int) -> list[str]:
    manifest = {
        "apiVersion": "kattle.dev/v1alpha1",
        "kind": "ProcessInstance",
        "metadata": {"generateName": f"{name}-", "namespace": "default"},
        "spec": {"process": process, "resource": {"name": name}},
    }
    text = "---\n".join([yaml.safe_dump(manifest)] * count)
    return admin.run("create", "-o", "name", "-f", "-", stdin=text).stdout.split()


def _create_run(admin: Kubectl, process: str, name: str) -> None:
    (created,) = _create_runs(admin, process, name, 1)
    admin.run(
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=60s",
        created,
        "-n",
        "default",
    )


def _create_runs_at_once(admin: Kubectl, process: str, name: str, count: int) -> list[str]:
    """The phases and exit reasons the runs ended in, as `Phase/ExitReason`."""
    runs = _create_runs(admin, process, name, count)
    deadline = time.monotonic() + 60
    path = "jsonpath={.status.phase}/{.status.exitReason}"
    while True:
        phases = [admin.run("get", run, "-n", "default", "-o", path).stdout for run in runs]
        if all(p.split("/")[0] in ("Succeeded", "Failed", "Canceled") for p in phases):
            return phases
        assert time.monotonic() < deadline, f"runs did not end: {phases}"
        time.sleep(0.3)


def _probe_type(admin: Kubectl, tls: HandlerServer, ca: Path) -> None:
    """A type beyond the samples: https with a CA from a ConfigMap, deletionPolicy Delete,
    a history limit that prunes runs, standard processes generated (and one pruned later)."""
    documents = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "probe-ca", "namespace": NAMESPACE},
            "data": {"ca.crt": ca.read_text()},
        },
        {
            "apiVersion": "kattle.dev/v1alpha1",
            "kind": "ResourceDefinition",
            "metadata": {"name": "probe"},
            "spec": {
                "names": {"kind": "Probe", "plural": "probes"},
                "initialState": "requested",
                "deletionPolicy": "Delete",
                "historyLimit": 1,
                "standardProcesses": {"exclude": ["create", "remove", "purge"]},
            },
        },
        {
            "apiVersion": "kattle.dev/v1alpha1",
            "kind": "ProcessDefinition",
            "metadata": {"name": "probe.check"},
            "spec": {
                "resourceType": "probe",
                "start": ["requested", "checked"],
                "transitioning": "checking",
                "done": "checked",
            },
        },
        {
            # The first check chains this one: the chained run reads its parent's record.
            "apiVersion": "kattle.dev/v1alpha1",
            "kind": "ProcessDefinition",
            "metadata": {"name": "probe.recheck"},
            "spec": {
                "resourceType": "probe",
                "start": ["checking"],
                "transitioning": "rechecking",
                "done": "checked",
            },
        },
        {
            "apiVersion": "kattle.dev/v1alpha1",
            "kind": "ProcessHandler",
            "metadata": {"name": "probe-check"},
            "spec": {
                "processes": ["probe.check"],
                "retryLimit": 0,
                "clientConfig": {
                    "url": tls.url("/check"),
                    "caFrom": {"kind": "ConfigMap", "namespace": NAMESPACE, "name": "probe-ca"},
                },
            },
        },
    ]
    tls.script("/check", Reply({"chain": "probe.recheck"}), Reply({}))
    admin.apply(yaml.safe_dump_all(documents))


def _grants(helm: Path) -> set[tuple[str | None, str, str, str]]:
    """(namespace or None, group, resource, verb) for every rule the chart binds."""
    grants = set()
    for doc in _render(helm, *RBAC_VALUES):
        if doc["kind"] not in ("ClusterRole", "Role"):
            continue
        if any(k.startswith(AGGREGATE) for k in doc["metadata"].get("labels") or {}):
            continue  # for people (the built-in view and edit roles), never bound to the operator
        namespace = doc["metadata"].get("namespace")
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        grants.add((namespace, group, resource, verb))
    return grants


def _requests(audit_log: Path) -> list[dict[str, Any]]:
    found = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        if event["user"]["username"] == SERVICE_ACCOUNT and "objectRef" in event:
            found.append(event)
    return found


def _uses(grant: tuple[str | None, str, str, str], event: dict[str, Any]) -> bool:
    namespace, group, resource, verb = grant
    ref = event["objectRef"]
    full = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    # A server-side apply that creates its object is audited as a patch, answered 201, and
    # the API server authorizes `create` for it too.
    created = event["verb"] == "patch" and event.get("responseStatus", {}).get("code") == 201
    if (group, resource, verb) == ("kattle.dev", "processinstances/status", "patch"):
        # No such subresource: the records policy (kattle.api.access) asks the authorizer
        # for it on each write of a run's record, a create or a patch of the run itself.
        return full == "processinstances" and event["verb"] in ("create", "patch")
    return (
        (event["verb"] == verb or (verb == "create" and created))
        and group in ("*", ref.get("apiGroup", ""))
        and resource in ("*", full)
        and (namespace is None or ref.get("namespace") == namespace)
    )


def test_the_operator_runs_the_instance_lifecycle_under_the_charts_rbac_and_needs_every_rule(
    installed: None, admin: Kubectl, helm: Path, plane: Any, tmp_path: Path
) -> None:
    sa_kubeconfig = _token_kubeconfig(admin, plane, tmp_path / "kubeconfig")
    handlers, url = _sample_handlers(admin, tmp_path)
    pki = controlplane_module.Pki(tmp_path / "pki")
    pki.create()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.path("apiserver.crt"), pki.path("apiserver.key"))
    tls = HandlerServer(ssl_context=context)
    operator = OperatorProcess(
        sa_kubeconfig,
        tmp_path / "operator.log",
        f"--service-override={NAMESPACE}/kattle-sample-handlers={url}",
        f"--runs-namespace={NAMESPACE}",
        f"--peering={RELEASE}",
        "--manage-crds",  # as the chart runs it: its RBAC must allow applying the CRDs
    )
    try:
        operator.start()
        admin.run("wait", "--for=condition=Ready", "--timeout=60s", "rd/instance")
        admin.run("apply", "-f", str(SAMPLES / "objects" / "web-1.yaml"))
        _wait_state(admin, "instance/web-1", "stopped")
        for process in ("start", "stop", "start", "restart"):
            _run(admin, f"instance.{process}", "instance/web-1")
        _create_run(admin, "instance.stop", "web-1")  # as users do: the operator adopts it
        # Two at once: one runs, the other waits for it and finds it already done.
        phases = _create_runs_at_once(admin, "instance.start", "web-1", 2)
        assert sorted(phases) == ["Succeeded/AlreadyDone", "Succeeded/Done"], phases
        _run(admin, "instance.stop", "instance/web-1")
        admin.run("delete", "instance", "web-1", "-n", "default", "--timeout=60s")

        _probe_type(admin, tls, pki.path("ca.crt"))
        admin.run("wait", "--for=condition=Ready", "--timeout=60s", "rd/probe")
        admin.apply(
            {
                "apiVersion": "resources.kattle.dev/v1",
                "kind": "Probe",
                "metadata": {"name": "p", "namespace": "default"},
            }
        )
        _wait_state(admin, "probe/p", "requested")
        _run(admin, "probe.check", "probe/p")
        # A stale claim, as a run deleted while it held the object leaves: the next run
        # reads the named run (get) to find it gone, and takes the object over.
        admin.run(
            "patch",
            "probe",
            "p",
            "-n",
            "default",
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status": {"activeRun": "p.deleted-00000000"}}',
        )
        _run(admin, "probe.check", "probe/p")  # historyLimit 1: the first run is pruned
        admin.run("get", "pd", "probe.update")  # generated; pruned once excluded:
        admin.run(
            "patch",
            "rd",
            "probe",
            "--type=merge",
            "-p",
            '{"spec": {"standardProcesses": {"exclude": ["create", "remove", "purge", "update"]}}}',
        )
        admin.run("wait", "--for=delete", "--timeout=60s", "pd/probe.update")
        admin.run("delete", "rd", "probe", "--timeout=60s")
        deadline = time.monotonic() + 60
        while admin.run("get", "crd", "probes.resources.kattle.dev", check=False).returncode == 0:
            assert time.monotonic() < deadline, "the operator did not delete the probe CRD"
            time.sleep(0.5)
    finally:
        operator.stop()  # ends the watches, so the audit log has them too
        handlers.terminate()
        handlers.wait(10)
        tls.close()
    time.sleep(1)

    requests = _requests(plane.audit_log)
    forbidden = sorted(
        {
            f"{e['verb']} {e['objectRef'].get('apiGroup', '')}/{e['objectRef']['resource']}"
            for e in requests
            if e.get("responseStatus", {}).get("code") == 403
        }
    )
    assert not forbidden, f"the chart's RBAC forbade: {forbidden}\n{operator.tail()}"
    unused = sorted(
        str(grant) for grant in _grants(helm) if not any(_uses(grant, e) for e in requests)
    )
    assert not unused, f"rules the operator never used (remove them): {unused}"


def test_an_upgraded_operator_upgrades_the_crds_helm_would_leave_as_they_were(
    installed: None, admin: Kubectl, plane: Any, tmp_path: Path
) -> None:
    """Helm installs a chart's crds/ once and never upgrades them. A cluster with an older
    CRD (here: one printer column fewer, as an earlier release had) gets the operator's
    own at start-up with `--manage-crds` (the chart's default), the objects stored under it
    kept."""
    name = "processinstances.kattle.dev"
    current = admin.get("crd", name)["spec"]["versions"][0]["additionalPrinterColumns"]
    patch = json.dumps([{"op": "remove", "path": "/spec/versions/0/additionalPrinterColumns/0"}])
    admin.run("patch", "crd", name, "--type=json", "-p", patch)
    older = admin.get("crd", name)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert older == current[1:]
    before = {d["metadata"]["name"] for d in admin.get("processdefinitions")["items"]}
    operator = OperatorProcess(
        plane.kubeconfig, tmp_path / "operator.log", "--manage-crds", f"--namespace={NAMESPACE}"
    ).start()
    try:
        wait_for(
            "the operator to apply its CRDs",
            lambda: (
                admin.get("crd", name)["spec"]["versions"][0]["additionalPrinterColumns"] == current
            ),
        )
    finally:
        operator.stop()
    after = {d["metadata"]["name"] for d in admin.get("processdefinitions")["items"]}
    assert before
    assert before == after


def test_monitoring_objects_appear_only_where_their_api_is_served_and_name_real_metrics(
    helm: Path,
) -> None:
    """ServiceMonitor and PrometheusRule only on a cluster serving monitoring.coreos.com/v1
    (an install elsewhere never fails on an unknown kind); their queries and the Grafana
    dashboard's name only metrics the operator exports."""
    import re

    from kattle.observability.metrics import Metrics

    wanted = [
        "--set=metrics.serviceMonitor.enabled=true",
        "--set=metrics.prometheusRule.enabled=true",
        "--set=metrics.grafanaDashboard.enabled=true",
    ]
    without = {d["kind"] for d in _render(helm, *wanted)}
    assert not {"ServiceMonitor", "PrometheusRule"} & without
    docs = _render(helm, "--api-versions=monitoring.coreos.com/v1", *wanted)
    kinds = {d["kind"] for d in docs}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    dashboard = next(d for d in docs if d["metadata"]["name"].endswith("-dashboard"))
    queries = " ".join(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"])
    queries += json.dumps(json.loads(dashboard["data"]["kattle.json"]))
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    exported = set()
    for family in Metrics().registry.collect():
        exported |= {family.name, *(family.name + s for s in suffixes.get(family.type, []))}
    named = set(re.findall(r"kattle_[a-z_]+", queries))
    assert named
    assert named <= exported, named - exported
