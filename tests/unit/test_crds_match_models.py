"""crds/ is generated from the API models: this fails when the two drift apart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kattle.api import crds
from tests.support.paths import CRDS


def test_committed_crds_are_what_the_models_generate() -> None:
    expected = crds.install_files()
    committed = {path.name: path.read_text() for path in CRDS.glob("*.yaml")}
    assert sorted(committed) == sorted(expected), "run `make generate`"
    for name, text in expected.items():
        assert committed[name] == text, f"crds/{name} differs from the models: run `make generate`"


def _walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")


@pytest.mark.parametrize("model", crds.KINDS, ids=lambda m: m.__name__)
def test_every_field_is_described_for_kubectl_explain(model: type[crds.KattleResource]) -> None:
    schema = crds.object_schema(model)
    undocumented = [
        path
        for path, node in _walk(schema, model.__name__)
        if not node.get("description")
        and not path.endswith(".metadata.name")
        and not path.endswith(".metadata")
        and not path.endswith("[]")
    ]
    assert undocumented == []


@pytest.mark.parametrize("model", crds.KINDS, ids=lambda m: m.__name__)
def test_schemas_are_structural(model: type[crds.KattleResource]) -> None:
    """Every node has a type (or is explicitly free-form) and no JSON-Schema-only keyword."""
    for path, node in _walk(crds.object_schema(model), model.__name__):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        for keyword in ("$ref", "anyOf", "oneOf", "allOf", "const", "title"):
            assert keyword not in node, f"{path} has {keyword}"


def test_free_form_fields_are_only_where_data_is_meant() -> None:
    free = {
        path
        for model in crds.KINDS
        for path, node in _walk(crds.object_schema(model), model.__name__)
        if node.get("x-kubernetes-preserve-unknown-fields")
    }
    assert free == {
        "ResourceDefinition.spec.schema",
        "ProcessInstance.spec.data",
        "ProcessInstance.status.data",
        "ProcessInstance.status.statusWrites",  # what handlers wrote on the object's status
    }


def test_crd_names_and_categories() -> None:
    for model in crds.KINDS:
        crd = crds.custom_resource_definition(model)
        assert crd["metadata"]["name"] == f"{model.crd_info.plural}.kattle.dev"
        assert crd["spec"]["names"]["categories"] == ["kattle"]
        # A run's record is created whole (kattle.api.access guards who may write it).
        expected = {} if model.crd_info.kind == "ProcessInstance" else {"status": {}}
        assert crd["spec"]["versions"][0].get("subresources", {}) == expected
    shorts = {m.crd_info.kind: m.crd_info.short_names for m in crds.KINDS}
    assert shorts == {
        "ResourceDefinition": ("rd",),
        "ProcessDefinition": ("pd",),
        "ProcessHandler": ("ph",),
        "ProcessInstance": ("pi",),
    }


def test_generated_files_are_valid_yaml_with_a_header() -> None:
    for text in crds.rendered_files().values():
        assert text.startswith(crds.HEADER)
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"
