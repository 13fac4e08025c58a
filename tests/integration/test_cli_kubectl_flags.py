"""The CLI's kubectl flags against the real API server (RBAC on, the run access policy
installed): impersonation, -A, -o name/jsonpath, --dry-run, and kubectl's plugin completion.

kubectl itself is the oracle where it can be: `-o name` and `-o jsonpath` must print what
`kubectl get` prints for the same runs, and plugin completion is asked of kubectl.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kube import Kubectl
from tests.support.world import GROUP, TEST_GROUP, World

BIN = Path(sys.executable).parent


def _cli(kubeconfig: Path, *args: str, program: str = "kattle") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / program), *args, f"--kubeconfig={kubeconfig}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


@pytest.fixture
def going(world: World) -> str:
    """A type with one manual process and an object `a` ready to run it."""
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    world.create("a")
    world.wait_state("a", "requested")
    return go


@pytest.fixture
def other_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace the test operator does not serve: runs there stay Pending, listed anyway."""
    name = f"other-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl.run("delete", "namespace", name, "--wait=false")


def test_as_impersonates_a_user_the_api_server_then_authorizes(
    world: World, going: str, kubeconfig: Path
) -> None:
    target = f"{world.kind}/a"
    ns = f"-n={world.namespace}"
    _ok(_cli(kubeconfig, "history", target, ns))
    nobody = f"nobody-{uuid.uuid4().hex[:6]}"
    refused = _refused(_cli(kubeconfig, "history", target, ns, f"--as={nobody}"))
    assert f'User "{nobody}" cannot' in refused, refused
    assert "forbidden" in refused
    # Each group is a header of its own, as kubectl sends them: joined, they would be one
    # group named "other, system:masters", with no rights.
    groups = ("--as-group=other", "--as-group=system:masters")
    _ok(_cli(kubeconfig, "history", target, ns, f"--as={nobody}", *groups))
    bad = _refused(_cli(kubeconfig, "history", target, ns, "--context=nope"))
    assert "no usable kubeconfig" in bad


def test_all_namespaces_lists_runs_of_every_namespace_with_a_namespace_column(
    world: World, going: str, kubeconfig: Path, kubectl: Kubectl, other_namespace: str
) -> None:
    world.custom.create_namespaced_custom_object(
        TEST_GROUP,
        "v1",
        other_namespace,
        world.plural,
        {"apiVersion": f"{TEST_GROUP}/v1", "kind": world.kind, "metadata": {"name": "b"}},
    )
    kind = world.kind.lower()
    here = _ok(_cli(kubeconfig, "run", going, f"{kind}/a", "-n", world.namespace, "-o", "name"))
    there = _ok(
        _cli(
            kubeconfig,
            "run",
            going,
            f"{kind}/b",
            "-n",
            other_namespace,
            "-o",
            "jsonpath={.metadata.name}",
        )
    )
    assert here.startswith(f"processinstance.{GROUP}/a.go-")
    assert here.endswith("\n")
    assert there.startswith("b.go-")
    assert "\n" not in there  # as kubectl's jsonpath: no newline unless asked for

    header, *rows = _ok(_cli(kubeconfig, "history", kind, "-A")).splitlines()
    assert header.split()[:3] == ["NAMESPACE", "NAME", "PROCESS"]
    listed = {(row.split()[0], row.split()[1]) for row in rows}
    assert listed == {
        (world.namespace, here.strip().rpartition("/")[2]),
        (other_namespace, there),
    }
    # Without -A, only the namespace asked for, and no NAMESPACE column.
    header, *rows = _ok(_cli(kubeconfig, "history", kind, "-n", other_namespace)).splitlines()
    assert header.split()[0] == "NAME"
    assert [row.split()[0] for row in rows] == [there]

    # kubectl is the oracle for -o name and -o jsonpath on the same runs.
    selector = f"kattle.dev/type={world.type}"
    kubectl_names = kubectl.run("get", "pi", "-A", "-l", selector, "-o", "name").stdout
    names = _ok(_cli(kubeconfig, "history", kind, "-A", "-o", "name"))
    assert sorted(names.splitlines()) == sorted(kubectl_names.splitlines())
    template = (
        '{range .items[*]}{.metadata.namespace}{"\\t"}{.metadata.name}{"\\t"}'
        '{.spec.process}{"\\t"}{.metadata.labels.kattle\\.dev/resource}{"\\n"}{end}'
    )
    ours = _ok(_cli(kubeconfig, "history", kind, "-A", "-o", f"jsonpath={template}"))
    theirs = kubectl.run("get", "pi", "-A", "-l", selector, "-o", f"jsonpath={template}").stdout
    assert sorted(ours.splitlines()) == sorted(theirs.splitlines())
    assert len(ours.splitlines()) == 2
    items = json.loads(_ok(_cli(kubeconfig, "history", "-A", "-o", "json")))["items"]
    assert {i["metadata"]["namespace"] for i in items} >= {world.namespace, other_namespace}


def test_dry_runs_create_nothing_and_print_the_run(
    world: World, going: str, kubeconfig: Path
) -> None:
    target = f"{world.kind.lower()}/a"
    ns = f"-n={world.namespace}"
    server = yaml.safe_load(
        _ok(_cli(kubeconfig, "run", going, target, ns, "--dry-run=server", "-o", "yaml"))
    )
    # What the server returned: a generated name, a uid and a creation time, never stored.
    assert server["metadata"]["name"].startswith("a.go-")
    assert server["metadata"]["uid"]
    assert server["metadata"]["creationTimestamp"]
    assert server["spec"]["process"] == going
    line = _ok(_cli(kubeconfig, "run", going, target, ns, "--dry-run=server"))
    assert line.startswith(f"processinstance.{GROUP}/a.go-")
    assert line.endswith(" created (server dry run)\n")

    client = json.loads(
        _ok(_cli(kubeconfig, "run", going, target, ns, "--dry-run=client", "-o", "json"))
    )
    assert client["metadata"]["generateName"] == "a.go-"
    assert client["metadata"]["namespace"] == world.namespace
    assert client["spec"]["resource"]["uid"] == world.get("a")["metadata"]["uid"]  # type: ignore[index]
    assert world.runs("a") == []
    assert world.status("a")["state"] == "requested"


def _grant_run_without_update(kubectl: Kubectl, world: World, user: str) -> list[str]:
    """What `kattle run` reads and creates, but not update on the object: the run access
    policy must refuse. Returns the cluster-scoped objects to delete."""
    name = f"{user}-{world.type}"
    read_definitions = {
        "apiGroups": [GROUP],
        "resources": ["resourcedefinitions"],
        "verbs": ["get", "list"],
    }
    in_namespace = [
        {"apiGroups": [GROUP], "resources": ["processinstances"], "verbs": ["create", "get"]},
        {"apiGroups": [TEST_GROUP], "resources": [world.plural], "verbs": ["get", "list"]},
    ]
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    for kind, rules, namespace in (
        ("ClusterRole", [read_definitions], None),
        ("Role", in_namespace, world.namespace),
    ):
        meta: dict[str, Any] = {"name": name}
        if namespace:
            meta["namespace"] = namespace
        kubectl.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": kind,
                "metadata": meta,
                "rules": rules,
            }
        )
        kubectl.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": f"{kind}Binding",
                "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
                "subjects": subjects,
            }
        )
    return [f"clusterrole/{name}", f"clusterrolebinding/{name}"]


def test_a_server_dry_run_is_judged_by_the_run_access_policy(
    world: World, going: str, kubeconfig: Path, kubectl: Kubectl
) -> None:
    user = f"runner-{uuid.uuid4().hex[:6]}"
    created = _grant_run_without_update(kubectl, world, user)
    try:
        args = ("run", going, f"{world.kind.lower()}/a", f"-n={world.namespace}", f"--as={user}")
        refused = _refused(_cli(kubeconfig, *args, "--dry-run=server"))
        assert (
            f"{user} may not run {going} on {world.plural}/a: starting a run needs permission "
            "to update that object" in refused
        ), refused
        # A client dry run asks the server nothing about the run: it prints it all the same.
        _ok(_cli(kubeconfig, *args, "--dry-run=client", "-o", "name"))
        assert world.runs("a") == []
    finally:
        kubectl.run("delete", *created, "--ignore-not-found")


def test_kubectl_completes_kattle_with_the_clusters_processes_and_objects(
    world: World, going: str, kubeconfig: Path, bin_dir: Path
) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{BIN}:{os.environ['PATH']}"}

    def complete(*words: str) -> list[str]:
        done = subprocess.run(
            [str(BIN / "kubectl_complete-kattle"), *words],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=env,
        )
        assert (done.returncode, done.stderr) == (0, "")
        return done.stdout.splitlines()

    kind = world.kind.lower()
    assert complete("run", world.type) == [going, ":4"]
    assert complete("run", going, "") == [f"{kind}/", ":6"]
    # Objects from the namespace typed (-n), else the context's, which has none here.
    assert complete("run", "-n", world.namespace, going, f"{kind}/") == [f"{kind}/a", ":4"]
    assert complete("run", going, f"{kind}/") == [":4"]
    assert f"{kind}/" in complete("history", "")
    assert world.namespace in complete("run", "-n", "")

    # And through kubectl itself, as the shell asks it (cobra's hidden __complete).
    asked = subprocess.run(
        [str(bin_dir / "kubectl"), "__complete", "kattle", "run", world.type],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.splitlines()[:2] == [going, ":4"], asked.stdout
