"""Builds Kattle's CustomResourceDefinitions from the API models.

`crds/` in the repository and the Helm chart's `crds/` are this module's output
(`make generate`); a unit test fails when the committed files drift from the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kattle.api import access
from kattle.api.common import GROUP, VERSION, KattleResource
from kattle.api.openapi import structural_schema
from kattle.api.processdefinition import ProcessDefinition
from kattle.api.processhandler import ProcessHandler
from kattle.api.processinstance import ProcessInstance
from kattle.api.resourcedefinition import ResourceDefinition

KINDS: tuple[type[KattleResource], ...] = (
    ResourceDefinition,
    ProcessDefinition,
    ProcessHandler,
    ProcessInstance,
)

PEERING_GROUP = "kopf.dev"

HEADER = "# Generated from operator/kattle/api by `make generate`. Do not edit.\n"


def object_schema(model: type[KattleResource]) -> dict[str, Any]:
    """The openAPIV3Schema of a kind: the model's schema with Kubernetes' own fields."""
    schema = structural_schema(model)
    properties = schema["properties"]
    # apiVersion, kind and metadata are the API server's: it validates them itself.
    properties["apiVersion"] = {
        "type": "string",
        "description": "The versioned schema of this representation of an object.",
    }
    properties["kind"] = {
        "type": "string",
        "description": "The REST resource this object represents, in CamelCase.",
    }
    # Kubernetes allows a schema for metadata.name only; declaring it bounds its length and
    # lets CEL rules on the root name `.metadata.name` as their field.
    properties["metadata"] = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": model.crd_info.name_max_length},
        },
    }
    schema["required"] = [name for name in schema.get("required", []) if name != "kind"]
    if not schema["required"]:
        del schema["required"]
    return schema


def custom_resource_definition(model: type[KattleResource]) -> dict[str, Any]:
    """The CRD manifest of one Kattle kind."""
    info = model.crd_info
    names: dict[str, Any] = {
        "kind": info.kind,
        "listKind": f"{info.kind}List",
        "plural": info.plural,
        "singular": info.singular,
        "shortNames": list(info.short_names),
        "categories": list(info.categories),
    }
    columns = [
        {
            "name": column.name,
            "type": column.type,
            "jsonPath": column.json_path,
            **({"description": column.description} if column.description else {}),
            **({"priority": column.priority} if column.priority else {}),
        }
        for column in info.printer_columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "kattle"},
        },
        "spec": {
            "group": GROUP,
            "names": names,
            "scope": info.scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    **({"subresources": {"status": {}}} if info.status_subresource else {}),
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": object_schema(model)},
                }
            ],
        },
    }


def kopf_peering_definition(scope: str) -> dict[str, Any]:
    """Kopf's peering CRD (kopf.dev/v1): with several replicas, the replicas announce
    themselves in a peering object and only the one with the highest priority works."""
    kind = "ClusterKopfPeering" if scope == "Cluster" else "KopfPeering"
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{PEERING_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "kattle"},
        },
        "spec": {
            "group": PEERING_GROUP,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "scope": scope,
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "Kopf peering: the operator replicas alive now.",
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def to_yaml(document: dict[str, Any]) -> str:
    """YAML as people write it: keys in the given order, block style, long lines kept."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)


def rendered_files() -> dict[str, str]:
    """File name to content, for every Kattle CRD."""
    files = {
        f"{GROUP}_{model.crd_info.plural}.yaml": HEADER + to_yaml(custom_resource_definition(model))
        for model in KINDS
    }
    for scope in ("Cluster", "Namespaced"):
        crd = kopf_peering_definition(scope)
        plural = crd["spec"]["names"]["plural"]
        files[f"{PEERING_GROUP}_{plural}.yaml"] = HEADER + to_yaml(crd)
    return files


def policy_text() -> str:
    """The admission policy that guards runs (kattle.api.access), with its binding."""
    return HEADER + "---\n".join(to_yaml(document) for document in access.documents())


def install_files() -> dict[str, str]:
    """Everything `kubectl apply -f crds/` installs: the CRDs and the run access policy."""
    return {**rendered_files(), access.FILE_NAME: policy_text()}


def write_files(folder: Path, files: dict[str, str] | None = None) -> list[Path]:
    """Writes `files` (by default `install_files()`) into `folder`, removing stale
    generated ones."""
    folder.mkdir(parents=True, exist_ok=True)
    files = install_files() if files is None else files
    for stale in [*folder.glob(f"{GROUP}_*.yaml"), *folder.glob(f"{PEERING_GROUP}_*.yaml")]:
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written
