"""The pydantic-to-structural-schema converter, on small models of its own."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from kattle.api.openapi import SchemaError, structural_schema


class Inner(BaseModel):
    """An inner object."""

    size: int = Field(default=1, ge=0, le=10)


class Outer(BaseModel):
    """An outer object."""

    name: str = Field(pattern="^[a-z]+$", description="A name.")
    inner: Inner | None = Field(default=None, description="Overrides the docstring.")
    items: list[Inner] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    anything: dict[str, Any] = Field(default_factory=dict)
    value: Any = None
    mode: Literal["a", "b"] = "a"
    only: Literal["x"] = "x"


def test_refs_are_inlined_and_optionals_folded() -> None:
    schema = structural_schema(Outer)
    assert schema["type"] == "object"
    assert schema["description"] == "An outer object."
    assert schema["required"] == ["name"]
    inner = schema["properties"]["inner"]
    assert inner["type"] == "object"
    assert inner["description"] == "Overrides the docstring."
    assert inner["properties"]["size"] == {
        "type": "integer",
        "default": 1,
        "maximum": 10,
        "minimum": 0,
    }
    assert "default" not in inner  # None defaults are left out
    assert schema["properties"]["items"]["items"]["description"] == "An inner object."


def test_maps_free_form_and_enums() -> None:
    props = structural_schema(Outer)["properties"]
    assert props["labels"]["additionalProperties"] == {"type": "string"}
    assert props["anything"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert props["value"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert props["mode"]["enum"] == ["a", "b"]
    assert props["only"]["enum"] == ["x"]
    assert "title" not in props["name"]


def test_exclusive_bounds_are_refused() -> None:
    class Bad(BaseModel):
        n: int = Field(gt=0)

    with pytest.raises(SchemaError, match="ge/le"):
        structural_schema(Bad)


def test_unions_of_types_are_refused() -> None:
    class Bad(BaseModel):
        n: int | str

    with pytest.raises(SchemaError, match="not structural"):
        structural_schema(Bad)
