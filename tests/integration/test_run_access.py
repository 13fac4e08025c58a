"""Who may start a run: only someone who may update the object (kattle.api.access).

The policy is installed with the CRDs (crds/), so the API server enforces it here exactly as
in a cluster; users are impersonated with `kubectl --as`, authorized by real RBAC.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.support.kube import Kubectl
from tests.support.paths import REPO
from tests.support.world import GROUP, TEST_GROUP, VERSION, World, wait_for


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


def test_only_who_may_update_processinstances_status_may_write_a_record(
    world: World, kubectl: Kubectl
) -> None:
    """A ProcessInstance has no status subresource (the operator creates a record whole),
    so the records policy stands where the subresource's RBAC check would: a user who may
    create and patch runs may not forge or rewrite their status."""
    user = f"user-{uuid.uuid4().hex[:6]}"
    runs = {
        "apiGroups": [GROUP],
        "resources": ["processinstances"],
        "verbs": ["create", "get", "patch"],
    }
    _grant(kubectl, world, user, [runs])
    as_user = [f"--as={user}", "-n", world.namespace]

    def forge(status: dict[str, Any] | None) -> tuple[str, Any]:
        name = f"forged-{uuid.uuid4().hex[:6]}"
        forged = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ProcessInstance",
            "metadata": {"name": name, "namespace": world.namespace},
            # A type without a ResourceDefinition: the run access policy lets it through.
            "spec": {"process": f"{world.type}.go", "resource": {"name": "a"}},
            **({"status": status} if status else {}),
        }
        stdin = yaml.safe_dump(forged)
        return name, kubectl.run(*as_user, "create", "-f", "-", stdin=stdin, check=False)

    def refused() -> tuple[str, str] | None:
        name, result = forge({"phase": "Succeeded", "exitReason": "Done"})
        if result.returncode == 0:  # a policy just installed takes a moment to be enforced
            kubectl.run("delete", "pi", name, "-n", world.namespace)
        return (name, result.stderr) if "may not write the record" in result.stderr else None

    name, message = wait_for("the records policy to refuse a forged record", refused)
    assert (
        f"{user} may not write the record of run {name}: writing the status of a "
        "ProcessInstance needs permission to update processinstances/status" in message
    ), message

    # Without a status the same run may be created, annotated, but not given a status.
    name, created = forge(None)
    assert created.returncode == 0, created.stderr
    world.wait_run(name)  # the operator's own write (no such process) comes first
    target = ["processinstance", name]
    kubectl.run(*as_user, "annotate", *target, "note=mine")
    rewrite = '{"status":{"phase":"Succeeded","message":"forged"}}'
    patched = kubectl.run(*as_user, "patch", *target, "--type=merge", "-p", rewrite, check=False)
    assert patched.returncode != 0
    assert "may not write the record" in patched.stderr, patched.stderr

    # The permission a status subresource would ask for is the one that lets it through.
    status = {
        "apiGroups": [GROUP],
        "resources": ["processinstances/status"],
        "verbs": ["update"],
    }
    _grant(kubectl, world, user, [runs, status])
    wait_for(
        "the status grant to take effect",
        lambda: (
            kubectl.run(
                *as_user, "patch", *target, "--type=merge", "-p", rewrite, check=False
            ).returncode
            == 0
        ),
    )
    assert kubectl.get(*target, "-n", world.namespace)["status"]["message"] == "forged"


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


def _bind_builtin(kubectl: Kubectl, world: World, user: str, role: str) -> None:
    kubectl.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{user}-{role}", "namespace": world.namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
    )


def _can(kubectl: Kubectl, world: World, user: str, verb: str, resource: str) -> bool:
    found = kubectl.run(
        "auth", "can-i", verb, resource, f"--as={user}", "-n", world.namespace, check=False
    )
    return found.stdout.strip() == "yes"


def test_the_charts_roles_give_the_builtin_view_and_edit_roles_kattles_kinds(
    world: World, kubectl: Kubectl, bin_dir: Path
) -> None:
    """The chart's aggregated ClusterRoles, rendered by Helm and aggregated by
    kube-controller-manager into `view` and `edit`: a user bound to `edit` starts a run (the
    run access policy passes, as `edit` may update the object); one bound to `view` reads
    runs and objects and may start none."""
    rendered = subprocess.run(
        [
            str(bin_dir / "helm"),
            "template",
            "kattle",
            str(REPO / "charts" / "kattle"),
            "--kube-version=1.36.0",
            "--show-only=templates/aggregated-roles.yaml",
            f"--set=rbac.resourceGroups={{{TEST_GROUP}}}",
            f"--set=fullnameOverride=kattle-{world.type}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for doc in yaml.safe_load_all(rendered):
        kubectl.apply(doc)
    try:
        world.define_type()
        go = world.process("go", ["requested"], "going", "gone")
        world.create("a")
        world.wait_state("a", "requested")
        editor, viewer = (f"{who}-{uuid.uuid4().hex[:6]}" for who in ("editor", "viewer"))
        _bind_builtin(kubectl, world, editor, "edit")
        _bind_builtin(kubectl, world, viewer, "view")
        wait_for(
            "the aggregation into edit and view",
            lambda: (
                _can(kubectl, world, editor, "create", "processinstances.kattle.dev")
                and _can(kubectl, world, viewer, "list", f"{world.plural}.{TEST_GROUP}")
            ),
        )
        assert _can(kubectl, world, viewer, "get", "processinstances.kattle.dev")
        assert not _can(kubectl, world, viewer, "create", "processinstances.kattle.dev")
        assert not _can(kubectl, world, viewer, "update", f"{world.plural}.{TEST_GROUP}")
        refused = _create_run_as(kubectl, world, viewer, go, "a")
        assert refused.returncode != 0
        started = _create_run_as(kubectl, world, editor, go, "a")
        assert started.returncode == 0, started.stderr
        name = started.stdout.strip().rpartition("/")[2]
        assert world.wait_run(name)["phase"] == "Succeeded"
    finally:
        for doc in yaml.safe_load_all(rendered):
            kubectl.run("delete", "clusterrole", doc["metadata"]["name"], check=False)
