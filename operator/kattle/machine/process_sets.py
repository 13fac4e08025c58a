"""Cattle's standard processes for a resource type, as the ProcessDefinitions to generate.

Cattle gave every resource the same lifecycle unless told otherwise: create, activate,
deactivate, update, remove and purge, with the same states. A ResourceDefinition asks for
them with `standardProcesses`; this module says which definitions that means (pure: the
controller applies them, owned by the ResourceDefinition, and deletes those no longer
wanted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kattle.api.common import API_VERSION
from kattle.api.processdefinition import ProcessDefinition
from kattle.api.resourcedefinition import ResourceDefinition, StandardVerb
from kattle.machine.catalog import Catalog

# Set on every generated definition, with the type's name: what the controller may change
# or delete. A definition without it was written by someone else and is left alone.
PROCESS_SET_LABEL = "kattle.dev/process-set"


@dataclass(frozen=True)
class StandardProcess:
    verb: StandardVerb
    # (start, transitioning, done) per start state; "" as a start is the type's initial state.
    routes: tuple[tuple[str, str, str], ...]
    trigger: str = "manual"


# Cattle's defaults. Remove also starts from `active`, where Cattle asked for a deactivate
# first: on Kubernetes, `kubectl delete` of an active object should not wait for someone
# to run a process by hand. Remove and purge both run on delete: remove, then purge, then
# the object goes (as Cattle purged what it had removed).
STANDARD: tuple[StandardProcess, ...] = (
    StandardProcess("create", (("", "registering", "inactive"),), "create"),
    StandardProcess("activate", (("inactive", "activating", "active"),)),
    # From activating too: it stops an activation that failed.
    StandardProcess(
        "deactivate",
        (("active", "deactivating", "inactive"), ("activating", "deactivating", "inactive")),
    ),
    StandardProcess(
        "update",
        (
            ("inactive", "updating-inactive", "inactive"),
            ("active", "updating-active", "active"),
        ),
    ),
    StandardProcess(
        "remove",
        (
            ("", "removing", "removed"),
            ("inactive", "removing", "removed"),
            ("active", "removing", "removed"),
        ),
        "delete",
    ),
    StandardProcess("purge", (("removed", "purging", "purged"),), "delete"),
)


def standard_processes(resource: ResourceDefinition) -> dict[str, dict[str, Any]]:
    """The ProcessDefinitions `resource` asks for, by name; empty when it asks for none."""
    wanted = resource.spec.standard_processes
    if wanted is None:
        return {}
    type_name = resource.metadata.name or ""
    states = {**wanted.states, "": resource.spec.initial_state}
    found = {}
    for process in STANDARD:
        if process.verb in wanted.exclude:
            continue
        name = f"{type_name}.{wanted.verbs.get(process.verb, process.verb)}"
        found[name] = _manifest(resource, name, process, states)
    return found


def _manifest(
    resource: ResourceDefinition,
    name: str,
    process: StandardProcess,
    states: Mapping[str, str],
) -> dict[str, Any]:
    def state(standard: str) -> str:
        return states.get(standard, standard)

    routes = [tuple(state(s) for s in route) for route in process.routes]
    # Renames can make two start states one (e.g. the initial state renamed to inactive).
    routes = list(dict.fromkeys(routes))
    if len({r[1] for r in routes}) == 1 and len({r[2] for r in routes}) == 1:
        ways: dict[str, Any] = {
            "start": [r[0] for r in routes],
            "transitioning": routes[0][1],
            "done": routes[0][2],
        }
    else:
        ways = {"stateMap": [{"start": s, "transitioning": t, "done": d} for s, t, d in routes]}
    return {
        "apiVersion": API_VERSION,
        "kind": "ProcessDefinition",
        "metadata": {
            "name": name,
            "labels": {PROCESS_SET_LABEL: resource.metadata.name or ""},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "ResourceDefinition",
                    "name": resource.metadata.name,
                    "uid": resource.metadata.uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "resourceType": resource.metadata.name,
            **ways,
            "trigger": process.trigger,
        },
    }


def add_standard_processes(catalog: Catalog) -> None:
    """Puts in `catalog` the standard processes its ResourceDefinitions ask for and it lacks,
    as the operator would generate them: for reading manifests offline (`kattle dot -f`)."""
    for resource in list(catalog.resources.values()):
        for name, manifest in standard_processes(resource).items():
            if name not in catalog.processes:
                catalog.put(ProcessDefinition.model_validate(manifest))


def generated_by(definition: Mapping[str, Any], type_name: str) -> bool:
    """Whether a ProcessDefinition's body was generated for `type_name`'s standard set."""
    labels = (definition.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(PROCESS_SET_LABEL) == type_name)
