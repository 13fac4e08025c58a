"""Cattle's standard processes: which ProcessDefinitions a ResourceDefinition asks for."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.api.processdefinition import ProcessDefinition
from kattle.api.resourcedefinition import ResourceDefinition
from kattle.machine.catalog import Catalog
from kattle.machine.process_sets import generated_by, standard_processes


def resource(standard: dict[str, Any] | None, **spec: Any) -> ResourceDefinition:
    body = {"names": {"kind": "Volume", "plural": "volumes"}, **spec}
    if standard is not None:
        body["standardProcesses"] = standard
    return ResourceDefinition.model_validate(
        {"metadata": {"name": "volume", "uid": "u-1"}, "spec": body}
    )


def ways(manifest: dict[str, Any]) -> list[tuple[str, str, str]]:
    spec = ProcessDefinition.model_validate(manifest).spec
    return [(r.start, r.transitioning, r.done) for r in spec.routes()]


def test_none_unless_asked_for() -> None:
    assert standard_processes(resource(None)) == {}


def test_cattles_defaults() -> None:
    found = standard_processes(resource({}))
    assert {name: (ways(m), m["spec"]["trigger"]) for name, m in found.items()} == {
        "volume.create": ([("requested", "registering", "inactive")], "create"),
        "volume.activate": ([("inactive", "activating", "active")], "manual"),
        "volume.deactivate": (
            [("active", "deactivating", "inactive"), ("activating", "deactivating", "inactive")],
            "manual",
        ),
        "volume.update": (
            [
                ("inactive", "updating-inactive", "inactive"),
                ("active", "updating-active", "active"),
            ],
            "manual",
        ),
        "volume.remove": (
            [
                ("requested", "removing", "removed"),
                ("inactive", "removing", "removed"),
                ("active", "removing", "removed"),
            ],
            "delete",
        ),
        "volume.purge": ([("removed", "purging", "purged")], "delete"),
    }
    # A state map only where the states differ by start state.
    assert "stateMap" in found["volume.update"]["spec"]
    assert found["volume.remove"]["spec"]["start"] == ["requested", "inactive", "active"]


@pytest.mark.parametrize(
    ("standard", "spec", "name", "expected"),
    [
        ({"exclude": ["purge", "update"]}, {}, "volume.update", None),
        ({"verbs": {"activate": "start"}}, {}, "volume.start",
         [("inactive", "activating", "active")]),
        ({"verbs": {"activate": "start"}}, {}, "volume.activate", None),
        ({"states": {"active": "running", "inactive": "stopped"}}, {}, "volume.update",
         [("stopped", "updating-inactive", "stopped"), ("running", "updating-active", "running")]),
        # The create process starts from the type's initial state.
        ({}, {"initialState": "pending"}, "volume.create",
         [("pending", "registering", "inactive")]),
        # Two start states made one by a rename are one.
        ({}, {"initialState": "inactive"}, "volume.remove",
         [("inactive", "removing", "removed"), ("active", "removing", "removed")]),
    ],
)  # fmt: skip
def test_exclusions_and_renames(
    standard: dict[str, Any],
    spec: dict[str, Any],
    name: str,
    expected: list[tuple[str, str, str]] | None,
) -> None:
    found = standard_processes(resource(standard, **spec))
    assert (ways(found[name]) if name in found else None) == expected


def test_generated_definitions_are_owned_labelled_and_valid_together() -> None:
    rd = resource({"states": {"active": "running"}})
    found = standard_processes(rd)
    catalog = Catalog()
    catalog.put(rd)
    for manifest in found.values():
        assert manifest["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "kattle.dev/v1alpha1",
                "kind": "ResourceDefinition",
                "name": "volume",
                "uid": "u-1",
                "controller": True,
            }
        ]
        assert generated_by(manifest, "volume")
        assert not generated_by(manifest, "instance")
        catalog.put(ProcessDefinition.model_validate(manifest))
    assert {name: catalog.process_problems(name) for name in found} == {n: [] for n in found}
