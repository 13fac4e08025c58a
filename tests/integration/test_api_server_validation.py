"""Kattle's API as users meet it at `kubectl apply`: samples, explain, defaults, refusals."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.kube import Kubectl
from tests.support.paths import SAMPLES

pytestmark = pytest.mark.usefixtures("kattle_crds")

API = "kattle.dev/v1alpha1"


def test_every_sample_applies_strictly(kubectl: Kubectl) -> None:
    files = sorted(SAMPLES.glob("*.yaml"))
    assert files, "no samples found"
    try:
        for path in files:
            kubectl.run("apply", "--server-side", "--validate=strict", "-f", str(path))
        processes = kubectl.get("processdefinitions")["items"]
        names = {item["metadata"]["name"] for item in processes}
        for verb in ("create", "start", "stop", "restart", "error", "remove", "purge"):
            assert f"instance.{verb}" in names
        assert "ipaddress.associate" in names
        listed = kubectl.run("get", "kattle").stdout
        for kind in ("resourcedefinition", "processdefinition", "processhandler"):
            assert f"{kind}.kattle.dev/" in listed
    finally:
        # The sample handlers attach to `*.create` of every type: other tests' types too.
        kubectl.run("delete", "--ignore-not-found", "-f", str(SAMPLES / "handlers.yaml"))


def test_printer_columns_show_the_state_machine(kubectl: Kubectl) -> None:
    kubectl.run("apply", "--server-side", "-f", str(SAMPLES / "instance.yaml"))
    table = kubectl.run("get", "pd", "instance.start").stdout.split("\n")
    assert table[0].split() == [
        "NAME",
        "TYPE",
        "START",
        "TRANSITIONING",
        "DONE",
        "TRIGGER",
        "READY",
        "AGE",
    ]
    assert table[1].split()[:6] == [
        "instance.start",
        "instance",
        '["stopped","creating"]',
        "starting",
        "running",
        "manual",
    ]


@pytest.mark.parametrize(
    ("resource", "phrases"),
    [
        ("rd.spec", ["The resource type to generate", "initialState", "Orphan"]),
        ("pd.spec", ["transitioning", "onError", "trigger", "allocationState"]),
        ("ph.spec.clientConfig", ["exactly one of", "caBundle", "allowInsecureHTTP"]),
        ("pi.status", ["handlerCalls", "exitReason", "transitions"]),
    ],
)
def test_kubectl_explain_teaches_the_api(
    kubectl: Kubectl, resource: str, phrases: list[str]
) -> None:
    text = kubectl.run("explain", resource).stdout
    for phrase in phrases:
        assert phrase in text, f"`kubectl explain {resource}` does not mention {phrase!r}"


def test_defaults_are_filled_in_by_the_api_server(kubectl: Kubectl) -> None:
    name = f"defaults-{uuid.uuid4().hex[:6]}"
    kubectl.apply(
        {
            "apiVersion": API,
            "kind": "ProcessHandler",
            "metadata": {"name": name},
            "spec": {
                "processes": ["instance.start"],
                "clientConfig": {"service": {"namespace": "ns", "name": "svc"}},
            },
        }
    )
    spec = kubectl.get("processhandler", name)["spec"]
    assert spec["phase"] == "handler"
    assert spec["priority"] == 1000
    assert spec["timeoutSeconds"] == 10
    assert spec["retryLimit"] == 10
    assert spec["failurePolicy"] == "Fail"
    assert spec["clientConfig"]["service"] == {
        "namespace": "ns",
        "name": "svc",
        "port": 443,
        "path": "/",
        "scheme": "https",
    }
    rd = f"defaults{uuid.uuid4().hex[:6]}"
    kubectl.apply(
        {
            "apiVersion": API,
            "kind": "ResourceDefinition",
            "metadata": {"name": rd},
            "spec": {"names": {"kind": "Gadget", "plural": f"{rd}s"}},
        }
    )
    spec = kubectl.get("resourcedefinition", rd)["spec"]
    assert spec["initialState"] == "requested"
    assert spec["deletionPolicy"] == "Orphan"
    assert spec["group"] == "resources.kattle.dev"
    assert spec["scope"] == "Namespaced"


def _pd(name: str = "x.go", **spec: Any) -> dict[str, Any]:
    base = {"resourceType": "x", "start": ["a"], "transitioning": "b", "done": "c"}
    return {
        "apiVersion": API,
        "kind": "ProcessDefinition",
        "metadata": {"name": name},
        "spec": {**base, **spec},
    }


def _ph(client_config: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ProcessHandler",
        "metadata": {"name": "h"},
        "spec": {"processes": ["x.go"], "clientConfig": client_config, **spec},
    }


def _rd(name: str = "gizmo", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ResourceDefinition",
        "metadata": {"name": name},
        "spec": {"names": {"kind": "Gizmo", "plural": "gizmos"}, **spec},
    }


def _pi(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ProcessInstance",
        "metadata": {"name": "run", "namespace": "default"},
        "spec": {"process": "x.go", "resource": {"name": "thing"}, **spec},
    }


# Each invalid manifest, and what the API server's refusal must say: the field and the rule.
INVALID: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "transitioning is a start state",
        _pd(start=["a", "b"], transitioning="b"),
        ["spec.transitioning", "must not be one of the start states"],
    ),
    (
        "transitioning is the done state",
        _pd(done="b"),
        ["spec.done", "done must differ from transitioning"],
    ),
    ("empty start list", _pd(start=[]), ["spec.start", "should have at least 1 items"]),
    (
        "no start list",
        {**_pd(), "spec": {"resourceType": "x", "transitioning": "b", "done": "c"}},
        ["spec", "set either start, transitioning and done, or stateMap"],
    ),
    ("duplicate start states", _pd(start=["a", "a"]), [".spec.start", "duplicate entries"]),
    (
        "process name is not type.verb",
        _pd(name="go", resourceType="go"),
        ["metadata.name", "must be <resourceType>.<verb>"],
    ),
    (
        "process name of another type",
        _pd(name="y.go"),
        ["metadata.name", "must start with spec.resourceType"],
    ),
    ("state with capitals", _pd(done="Done"), ["spec.done", "should match"]),
    (
        "unknown trigger",
        _pd(trigger="sometimes"),
        ["spec.trigger", 'supported values: "create", "delete", "manual"'],
    ),
    ("onError of another type", _pd(onError="y.fail"), ["spec.onError", "same resource type"]),
    ("onError is itself", _pd(onError="x.go"), ["spec.onError", "its own onError"]),
    ("unknown field", _pd(color="red"), ["spec.color", "field not declared in schema"]),
    (
        "webhook with url and service",
        _ph({"url": "https://h.example.com/", "service": {"namespace": "a", "name": "b"}}),
        ["spec.clientConfig", "exactly one of url or service"],
    ),
    (
        "webhook with neither url nor service",
        _ph({}),
        ["spec.clientConfig", "exactly one of url or service"],
    ),
    (
        "plain http url",
        _ph({"url": "http://h.example.com/hook"}),
        ["spec.clientConfig.url", "must start with https://"],
    ),
    (
        "url with credentials",
        _ph({"url": "https://user:secret@h.example.com/hook"}),
        ["spec.clientConfig.url", "should match"],
    ),
    (
        "url with a query",
        _ph({"url": "https://h.example.com/hook?x=1"}),
        ["spec.clientConfig.url", "should match"],
    ),
    (
        "caBundle with plain http service",
        _ph({"service": {"namespace": "a", "name": "b", "scheme": "http"}, "caBundle": "Zm9v"}),
        ["spec.clientConfig.caBundle", "only used with https"],
    ),
    (
        "caFrom with plain http service",
        _ph(
            {
                "service": {"namespace": "a", "name": "b", "scheme": "http"},
                "caFrom": {"kind": "ConfigMap", "namespace": "a", "name": "ca"},
            }
        ),
        ["spec.clientConfig.caFrom", "only used with https"],
    ),
    (
        "a client certificate with a plain http service",
        _ph(
            {
                "service": {"namespace": "a", "name": "b", "scheme": "http"},
                "clientCertificateSecretRef": {"namespace": "a", "name": "client-tls"},
            }
        ),
        ["spec.clientConfig.clientCertificateSecretRef", "only used with https"],
    ),
    (
        "caBundle and caFrom",
        _ph(
            {
                "url": "https://h.example.com/",
                "caBundle": "Zm9v",
                "caFrom": {"kind": "Secret", "namespace": "a", "name": "ca"},
            }
        ),
        ["spec.clientConfig.caFrom", "at most one of caBundle and caFrom"],
    ),
    (
        "caFrom of another kind",
        _ph(
            {
                "url": "https://h.example.com/",
                "caFrom": {"kind": "Pod", "namespace": "a", "name": "ca"},
            }
        ),
        ["spec.clientConfig.caFrom.kind", 'supported values: "ConfigMap", "Secret"'],
    ),
    (
        "timeout too long",
        _ph({"url": "https://h.example.com/"}, timeoutSeconds=3600),
        ["spec.timeoutSeconds", "less than or equal to 300"],
    ),
    (
        "negative priority",
        _ph({"url": "https://h.example.com/"}, priority=-1),
        ["spec.priority", "greater than or equal to 0"],
    ),
    (
        "bad phase",
        _ph({"url": "https://h.example.com/"}, phase="during"),
        ["spec.phase", 'supported values: "pre", "handler", "post"'],
    ),
    (
        "bad process selector",
        _ph({"url": "https://h.example.com/"}, processes=["x.[ab]"]),
        ["spec.processes[0]", "should match"],
    ),
    (
        "a label selector rule without values",
        _ph(
            {"url": "https://h.example.com/"},
            objectSelector={"matchExpressions": [{"key": "tier", "operator": "In"}]},
        ),
        ["In and NotIn need values"],
    ),
    (
        "a selector without a type",
        _ph({"url": "https://h.example.com/"}, processes=["start"]),
        ["spec.processes[0]", "should match"],
    ),
    (
        "service port out of range",
        _ph({"service": {"namespace": "a", "name": "b", "port": 70000}}),
        ["spec.clientConfig.service.port", "less than or equal to 65535"],
    ),
    (
        "kind not CamelCase",
        _rd(names={"kind": "gizmo", "plural": "gizmos"}),
        ["spec.names.kind", "should match"],
    ),
    (
        "plural with capitals",
        _rd(names={"kind": "Gizmo", "plural": "Gizmos"}),
        ["spec.names.plural", "should match"],
    ),
    (
        "type name with a dot",
        _rd(name="giz.mo"),
        ["metadata.name", "is the resource type used in process names"],
    ),
    ("Kattle's own group", _rd(group="kattle.dev"), ["spec.group", "reserved for Kattle"]),
    ("a Kubernetes group", _rd(group="apps.k8s.io"), ["spec.group", "reserved for Kubernetes"]),
    ("group without a dot", _rd(group="gizmos"), ["spec.group", "should match"]),
    ("bad initial state", _rd(initialState="New State"), ["spec.initialState", "should match"]),
    (
        "initial state of state in initialStates",
        _rd(initialStates={"state": "new"}),
        ["spec.initialStates", "the initial value of `state` is initialState"],
    ),
    (
        "bad field in initialStates",
        _rd(initialStates={"Health-State": "new"}),
        ["spec.initialStates", "a lowercase letter, then letters and digits"],
    ),
    (
        "bad state in initialStates",
        _rd(initialStates={"healthState": "New State"}),
        ["spec.initialStates.healthState", "should match"],
    ),
    (
        "bad deletion policy",
        _rd(deletionPolicy="Cascade"),
        ["spec.deletionPolicy", 'supported values: "Orphan", "Delete"'],
    ),
    (
        "history limit too high",
        _rd(historyLimit=100000),
        ["spec.historyLimit", "less than or equal to 1000"],
    ),
    (
        "instance without resource",
        {**_pi(), "spec": {"process": "x.go"}},
        ["spec.resource", "Required value"],
    ),
    ("instance of a bad process name", _pi(process="start"), ["spec.process", "should match"]),
    ("instance with an unknown trigger", _pi(trigger="cron"), ["spec.trigger", "supported values"]),
    (
        "a reference relation without its field",
        _rd(relations=[{"name": "nic", "type": "nic", "kind": "reference"}]),
        ["spec.relations[0].field", "set it for kind reference, and only for it"],
    ),
    (
        "a children relation with a field",
        _rd(relations=[{"name": "disks", "type": "volume", "field": "disks"}]),
        ["spec.relations[0].field", "set it for kind reference, and only for it"],
    ),
    (
        "two relations of one name",
        _rd(relations=[{"name": "disks", "type": "volume"}, {"name": "disks", "type": "nic"}]),
        [".spec.relations", 'duplicate entries for key [name="disks"]'],
    ),
    (
        "related runs on no relation",
        _pd(relatedRuns=[{"process": "volume.activate"}]),
        ["spec.relatedRuns[0].relation", "Required value"],
    ),
    (
        "related runs at an unknown time",
        _pd(relatedRuns=[{"relation": "disks", "process": "volume.activate", "when": "during"}]),
        ["spec.relatedRuns[0].when", "supported values"],
    ),
]


@pytest.mark.parametrize(("case", "manifest", "phrases"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_objects_are_refused_with_a_clear_message(
    kubectl: Kubectl, case: str, manifest: dict[str, Any], phrases: list[str]
) -> None:
    result = kubectl.apply(manifest, "--dry-run=server", check=False)
    assert result.returncode != 0, f"{case}: the API server accepted it"
    for phrase in phrases:
        assert phrase in result.stderr, f"{case}: {phrase!r} not in:\n{result.stderr}"


def _patch_refused(kubectl: Kubectl, target: list[str], patch: str, phrase: str) -> None:
    result = kubectl.run("patch", *target, "--type=merge", "-p", patch, check=False)
    assert result.returncode != 0, f"patch {patch} of {target} was accepted"
    assert phrase in result.stderr, result.stderr


def test_a_process_instance_spec_cannot_change(kubectl: Kubectl) -> None:
    name = f"run-{uuid.uuid4().hex[:6]}"
    kubectl.apply({**_pi(), "metadata": {"name": name, "namespace": "default"}})
    target = ["processinstance", name, "-n", "default"]
    _patch_refused(kubectl, target, '{"spec":{"process":"x.stop"}}', "spec is immutable")
    _patch_refused(kubectl, target, '{"spec":{"resource":{"name":"other"}}}', "spec is immutable")
    _patch_refused(kubectl, target, '{"spec":{"data":{"k":"v"}}}', "spec is immutable")
    # Labels and the status stay writable: the operator records the run there (the
    # records policy lets an administrator write it; see test_run_access.py for a user).
    kubectl.run("label", *target, "note=ok")
    kubectl.run(
        "patch", *target, "--type=merge", "-p", '{"status":{"phase":"Running","attempts":1}}'
    )
    assert kubectl.get(*target)["status"]["phase"] == "Running"


def test_definition_identity_cannot_change(kubectl: Kubectl) -> None:
    rd = f"immut{uuid.uuid4().hex[:6]}"
    kubectl.apply(_rd(name=rd, names={"kind": "Immut", "plural": f"{rd}s"}))
    target = ["resourcedefinition", rd]
    _patch_refused(kubectl, target, '{"spec":{"group":"other.example.com"}}', "group is immutable")
    _patch_refused(kubectl, target, '{"spec":{"scope":"Cluster"}}', "scope is immutable")
    _patch_refused(
        kubectl, target, '{"spec":{"names":{"kind":"Other"}}}', "names.kind is immutable"
    )
    # What does not break running work may change.
    kubectl.run("patch", *target, "--type=merge", "-p", '{"spec":{"historyLimit":3}}')

    pd = f"{rd}.go"
    kubectl.apply(_pd(name=pd, resourceType=rd))
    _patch_refused(
        kubectl,
        ["processdefinition", pd],
        '{"spec":{"resourceType":"x"}}',
        "resourceType is immutable",
    )
    kubectl.run("patch", "processdefinition", pd, "--type=merge", "-p", '{"spec":{"done":"d"}}')
