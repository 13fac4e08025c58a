"""Who may start a run: only someone who may update the object (kattle.api.access).

The policy is installed with the CRDs (crds/), so the API server enforces it here exactly as
in a cluster; users are impersonated with `kubectl --as`, authorized by real RBAC.
"""

from __future__ import annotations

import uuid
from typing import Any

import yaml

from tests.support.kube import Kubectl
from tests.support.world import GROUP, TEST_GROUP, VERSION, World


def _grant(kubectl: Kubectl, world: World, user: str, rules: list[dict[str, Any]]) -> None:
    name = f"{user}-{world.type}"
    kubectl.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": world.namespace},
            "rules": rules,
        }
    )
    kubectl.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": world.namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
    )


def _create_run_as(kubectl: Kubectl, world: World, user: str, process: str, obj: str) -> Any:
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ProcessInstance",
        "metadata": {"generateName": f"{obj}-", "namespace": world.namespace},
        "spec": {"process": process, "resource": {"name": obj}},
    }
    return kubectl.run(
        f"--as={user}",
        "create",
        "-o",
        "name",
        "-f",
        "-",
        stdin=yaml.safe_dump(manifest),
        check=False,
    )


def test_only_a_user_who_may_update_the_object_may_start_a_run_on_it(
    world: World, kubectl: Kubectl
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    world.create("a")
    world.wait_state("a", "requested")
    user = f"user-{uuid.uuid4().hex[:6]}"
    runs = {"apiGroups": [GROUP], "resources": ["processinstances"], "verbs": ["create", "get"]}
    read = {"apiGroups": [TEST_GROUP], "resources": [world.plural], "verbs": ["get", "list"]}
    _grant(kubectl, world, user, [runs, read])

    refused = _create_run_as(kubectl, world, user, go, "a")
    assert refused.returncode != 0
    assert (
        f"{user} may not run {go} on {world.plural}/a: starting a run needs permission to "
        "update that object" in refused.stderr
    ), refused.stderr
    assert world.runs("a") == []
    assert world.status("a")["state"] == "requested"

    # Update on that one object is enough; the run then goes through as any other.
    write = {
        "apiGroups": [TEST_GROUP],
        "resources": [world.plural],
        "resourceNames": ["a"],
        "verbs": ["update"],
    }
    _grant(kubectl, world, user, [runs, read, write])
    allowed = _create_run_as(kubectl, world, user, go, "a")
    assert allowed.returncode == 0, allowed.stderr
    name = allowed.stdout.strip().rpartition("/")[2]
    assert world.wait_run(name)["phase"] == "Succeeded"
    world.wait_state("a", "gone")

    # ...but only on that object.
    world.create("b")
    world.wait_state("b", "requested")
    assert _create_run_as(kubectl, world, user, go, "b").returncode != 0


def test_runs_of_processes_without_a_definition_are_left_to_the_operator(
    world: World, kubectl: Kubectl
) -> None:
    """No ResourceDefinition names the type: nothing to check access against, and the
    operator ends the run Invalid, acting on nothing."""
    user = f"user-{uuid.uuid4().hex[:6]}"
    runs = {"apiGroups": [GROUP], "resources": ["processinstances"], "verbs": ["create"]}
    _grant(kubectl, world, user, [runs])
    created = _create_run_as(kubectl, world, user, f"{world.type}.go", "a")
    assert created.returncode == 0, created.stderr
    name = created.stdout.strip().rpartition("/")[2]
    log = world.wait_run(name)
    assert (log["phase"], log["exitReason"]) == ("Failed", "Invalid")
