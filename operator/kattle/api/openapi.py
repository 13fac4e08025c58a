"""Turns a pydantic model's JSON Schema into a Kubernetes structural OpenAPI v3 schema.

Kubernetes accepts only "structural" schemas in CRDs: no `$ref`, no `anyOf` of types, a
`type` on every node (or `x-kubernetes-preserve-unknown-fields`), and OpenAPI v3.0 forms of
keywords that JSON Schema 2020-12 spells differently. Pydantic emits 2020-12; this module
rewrites it, so the models stay the one place where the API is written down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

# Keywords that are meaningful in both dialects and pass through unchanged.
_KEPT = frozenset(
    {
        "type",
        "format",
        "description",
        "default",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "required",
        "nullable",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
        "x-kubernetes-map-type",
        "x-kubernetes-embedded-resource",
    }
)
# Keywords dropped on purpose: documentation Kubernetes does not use, or constraints it
# expresses otherwise (unknown fields are pruned by the API server, not refused).
_DROPPED = frozenset({"title", "additionalProperties", "examples", "$defs"})


class SchemaError(ValueError):
    """The model uses a construct that has no structural-schema equivalent."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of `model` as Kubernetes expects it in a CRD."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(raw, raw.get("$defs", {}), path=model.__name__)


def _convert(node: Mapping[str, Any], defs: Mapping[str, Any], path: str) -> dict[str, Any]:
    node = _resolve(node, defs, path)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key in {"properties", "items", "anyOf", "const"}:
            continue
        if key in {"exclusiveMinimum", "exclusiveMaximum"}:
            # JSON Schema 2020-12 gives a number, OpenAPI v3.0 a boolean: use ge/le instead.
            raise SchemaError(f"{path}: use ge/le rather than gt/lt in API models")
        if key not in _KEPT:
            raise SchemaError(f"{path}: no structural-schema equivalent for {key!r}")
        out[key] = value
    if "const" in node:
        out["enum"] = [node["const"]]
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {
            name: _convert(child, defs, f"{path}.{name}")
            for name, child in node["properties"].items()
        }
    additional = node.get("additionalProperties")
    if isinstance(additional, Mapping) and additional:
        out["additionalProperties"] = _convert(additional, defs, f"{path}[*]")
    elif additional is True and "properties" not in node:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "items" in node:
        out["items"] = _convert(node["items"], defs, f"{path}[]")
    if out.get("default", 0) is None:
        del out["default"]
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        if set(node) - _DROPPED - {"default", "description"}:
            raise SchemaError(f"{path}: every schema node needs a type")
        # `Any` is the empty schema (bar documentation): any JSON value at all.
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("x-kubernetes-preserve-unknown-fields") and out.get("type") == "object":
        out.pop("additionalProperties", None)
    return _ordered(out)


_LEADING = ("type", "description", "format", "enum", "default")
_TRAILING = ("x-kubernetes-validations", "properties", "additionalProperties", "items")


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """What a reader wants first (type, description) first, nested schemas last."""
    middle = sorted(key for key in node if key not in _LEADING and key not in _TRAILING)
    return {key: node[key] for key in (*_LEADING, *middle, *_TRAILING) if key in node}


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Inlines `$ref`s and folds `Optional[X]` (anyOf X, null) into X."""
    result = dict(node)
    ref = result.pop("$ref", None)
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name not in defs:
            raise SchemaError(f"{path}: unknown reference {ref}")
        # The referencing field's own keywords (its description, default) win.
        result = {**_resolve(defs[name], defs, path), **result}
    variants = result.pop("anyOf", None)
    if variants is not None:
        real = [v for v in variants if v.get("type") != "null"]
        if len(real) != 1:
            raise SchemaError(f"{path}: unions of several types are not structural")
        result = {**_resolve(real[0], defs, path), **result}
    return result
