"""Pieces shared by every Kattle API type: the group, naming rules, metadata and conditions.

The models in `kattle.api` are the single source of truth for the API: the CRD manifests in
`crds/` (and the Helm chart's copy) are generated from them by `kattle.api.crds`, so the
constraints written here (patterns, bounds, enums, defaults, CEL rules) are what the API
server enforces at `kubectl apply`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "kattle.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "kattle"

# Names are kept to what is safe as a label value, a DNS label and a Graphviz id alike.
STATE_PATTERN = r"^[a-z][a-z0-9-]*$"
TYPE_PATTERN = r"^[a-z][a-z0-9-]*$"
PROCESS_PATTERN = r"^[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*$"
# A process name, or a glob of one: `*` (every process), `instance.*`, `*.create`, `vol*.st*`.
PROCESS_SELECTOR_PATTERN = r"^(\*|[a-z*?][a-z0-9*?-]*\.[a-z*?][a-z0-9*?-]*)$"
NAME_MAX = 63

StateName = Annotated[
    str,
    Field(
        pattern=STATE_PATTERN,
        min_length=1,
        max_length=NAME_MAX,
        description="A state: lowercase letters, digits and '-', starting with a letter.",
    ),
]
ProcessName = Annotated[
    str,
    Field(
        pattern=PROCESS_PATTERN,
        max_length=2 * NAME_MAX + 1,
        description="A process name, `<resource type>.<verb>`, e.g. `instance.start`.",
    ),
]
ResourceTypeName = Annotated[
    str,
    Field(
        pattern=TYPE_PATTERN,
        min_length=1,
        max_length=NAME_MAX,
        description="A resource type, the name of its ResourceDefinition, e.g. `instance`.",
    ),
]


def cel(
    rule: str,
    message: str,
    *,
    field_path: str | None = None,
    reason: str | None = None,
) -> JsonDict:
    """One `x-kubernetes-validations` entry: a CEL rule the API server checks on write."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def validated_by(*rules: JsonDict) -> ConfigDict:
    """Model config that attaches CEL rules to the model's object schema."""
    return ConfigDict(json_schema_extra={"x-kubernetes-validations": list(rules)})


def immutable(what: str) -> JsonDict:
    """Schema extra that makes a field unchangeable once set (a CEL transition rule)."""
    return {"x-kubernetes-validations": [cel("self == oldSelf", f"{what} is immutable")]}


def string_set() -> JsonDict:
    """Schema extra for a list of unique strings: duplicates are refused, merges are by value."""
    return {"x-kubernetes-list-type": "set"}


class KattleModel(BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready form the API server stores (camelCase, unset fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectMeta(KattleModel):
    """The parts of Kubernetes object metadata that Kattle reads."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Condition(KattleModel):
    """The latest observation of one aspect of the object, as in Kubernetes' metav1.Condition."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Type of condition in CamelCase, e.g. `Ready`.",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The .metadata.generation this condition was set for.",
    )
    last_transition_time: datetime = Field(
        description="When the condition last changed from one status to another."
    )
    reason: str = Field(
        max_length=1024,
        pattern=r"^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?)?$",
        description="Why the condition is in this status: a CamelCase word for programs.",
    )
    message: str = Field(
        default="",
        max_length=32768,
        description="Why the condition is in this status, for humans.",
    )


def conditions_field() -> Any:
    """A `conditions` list keyed by type, as every Kubernetes status has it."""
    return Field(
        default_factory=list,
        max_length=32,
        description="The latest observations of the object's state.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


@dataclass(frozen=True)
class PrinterColumn:
    """One column of `kubectl get`."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class CrdInfo:
    """What a CRD needs besides the schema: names, scope and `kubectl get` columns."""

    kind: str
    plural: str
    singular: str
    scope: Literal["Namespaced", "Cluster"]
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    categories: tuple[str, ...] = field(default=(CATEGORY,))
    # The API server checks this in the schema, which lets CEL rules point at metadata.name.
    name_max_length: int = 253
    # Without it, a create carries the status it is given (the operator writes a run's
    # record whole, once); an admission policy then says who may write one.
    status_subresource: bool = True


class KattleResource(KattleModel):
    """A top-level Kattle object: apiVersion, kind, metadata, spec and status."""

    crd_info: ClassVar[CrdInfo]

    api_version: str = API_VERSION
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
