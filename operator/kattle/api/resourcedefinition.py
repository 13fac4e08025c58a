"""ResourceDefinition: declares a resource type whose objects Kattle orchestrates.

Like Crossplane's CompositeResourceDefinition, a ResourceDefinition is rendered into a CRD
for a new kind (e.g. `Instance`) whose objects carry a Cattle state. The definition's name
is the resource type that process names start with (`instance` in `instance.start`).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from kattle.api.common import (
    CATEGORY,
    NAME_MAX,
    Condition,
    CrdInfo,
    KattleModel,
    KattleResource,
    PrinterColumn,
    ResourceTypeName,
    StateName,
    cel,
    conditions_field,
    immutable,
    string_set,
    validated_by,
)

DEFAULT_GROUP = "resources.kattle.dev"
DEFAULT_INITIAL_STATE = "requested"

_GROUP_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"


_LowerName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*$", max_length=NAME_MAX)]
_Category = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=NAME_MAX)]


class ResourceNames(KattleModel):
    """The names of the generated kind, as in a CRD's spec.names."""

    kind: str = Field(
        pattern=r"^[A-Z][A-Za-z0-9]*$",
        max_length=NAME_MAX,
        description="The kind of the generated objects, in CamelCase, e.g. `Instance`.",
        json_schema_extra=immutable("names.kind"),
    )
    plural: str = Field(
        pattern=r"^[a-z][a-z0-9]*$",
        max_length=NAME_MAX,
        description="The plural resource name used in URLs and `kubectl get`, e.g. `instances`.",
        json_schema_extra=immutable("names.plural"),
    )
    singular: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9]*$",
        max_length=NAME_MAX,
        description="The singular name, e.g. `instance`. Defaults to the kind in lowercase.",
    )
    short_names: list[_LowerName] = Field(
        default_factory=list,
        max_length=8,
        description="Short names for `kubectl get`, e.g. `ins`.",
        json_schema_extra=string_set(),
    )
    categories: list[_Category] = Field(
        default_factory=list,
        max_length=8,
        description=(
            "Categories the kind joins, so `kubectl get <category>` lists it. "
            f"The operator adds `{CATEGORY}-resources` to every generated kind."
        ),
        json_schema_extra=string_set(),
    )


RelationName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-zA-Z0-9]*$",
        max_length=NAME_MAX,
        description="A relation's name: a lowercase letter, then letters and digits.",
    ),
]


class Relation(KattleModel):
    """Objects of another resource type that belong to or are named by this one.

    Related objects are in the object's namespace (or cluster-scoped, for a cluster-scoped
    type: both types must have the same scope). Processes run processes on them with
    `relatedRuns`, and handlers may ask for runs on them.
    """

    model_config = validated_by(
        cel(
            "self.kind == 'reference' ? has(self.field) : !has(self.field)",
            "field names the spec field that holds the related names: set it for kind "
            "reference, and only for it",
            field_path=".field",
        ),
    )

    name: RelationName = Field(description="The relation's name, e.g. `volumes`.")
    type: ResourceTypeName = Field(
        description="The related objects' resource type (a ResourceDefinition's name)."
    )
    kind: Literal["children", "reference"] = Field(
        default="children",
        description=(
            "`children` (the default): objects of `type` whose ownerReferences name this "
            "object, the Kubernetes way. `reference`: the objects this object names in "
            "`spec.<field>` (one name or a list of names)."
        ),
    )
    field: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z][a-zA-Z0-9]*(\.[a-zA-Z][a-zA-Z0-9]*)*$",
        max_length=253,
        description="For kind reference: the path in `spec`, e.g. `volumes` or `network.nic`.",
    )


class ResourceDefinitionSpec(KattleModel):
    """The desired generated kind and how its objects start their life."""

    model_config = validated_by(
        cel(
            "!has(self.names.singular) || self.names.singular != self.names.plural",
            "names.singular and names.plural must differ",
            field_path=".names.singular",
        ),
    )

    names: ResourceNames = Field(description="The names of the generated kind.")
    group: str = Field(
        default=DEFAULT_GROUP,
        pattern=_GROUP_PATTERN,
        max_length=253,
        description=(
            "The API group of the generated kind, a DNS subdomain such as "
            f"`{DEFAULT_GROUP}` (the default) or `example.com`."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self == oldSelf", "group is immutable"),
                cel(
                    "self != 'kattle.dev'",
                    "group kattle.dev is reserved for Kattle's own kinds: use a group of "
                    f"your own, e.g. {DEFAULT_GROUP}",
                ),
                cel(
                    "!self.endsWith('.k8s.io') && !self.endsWith('.kubernetes.io')",
                    "groups under k8s.io and kubernetes.io are reserved for Kubernetes",
                ),
            ]
        },
    )
    version: str = Field(
        default="v1",
        pattern=r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$",
        max_length=20,
        description="The API version of the generated kind, `v1` by default.",
        json_schema_extra=immutable("version"),
    )
    scope: Literal["Namespaced", "Cluster"] = Field(
        default="Namespaced",
        description="Whether objects of the kind live in a namespace (the default) or not.",
        json_schema_extra=immutable("scope"),
    )
    schema_: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description=(
            "OpenAPI v3 schema of the generated objects' `spec`, as in a CRD version's "
            "openAPIV3Schema. Without it the spec accepts any fields."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    initial_state: StateName = Field(
        default=DEFAULT_INITIAL_STATE,
        description="The state a new object starts in, before any process runs.",
    )
    initial_states: dict[str, StateName] = Field(
        default_factory=dict,
        description=(
            "The state each further state field starts in, by field, e.g. "
            "`{allocationState: inactive}` for processes whose `stateField` is "
            "`allocationState`; `state` starts in `initialState`. An object whose field is "
            "unset is in this state. A field with none stays unset until written, so no "
            "process of it can start."
        ),
        json_schema_extra={
            "maxProperties": 16,
            "x-kubernetes-validations": [
                cel(
                    "self.all(f, f.matches('^[a-z][a-zA-Z0-9]*$') && f != 'state')",
                    "initialStates are by stateField (a lowercase letter, then letters and "
                    "digits); the initial value of `state` is initialState",
                )
            ],
        },
    )
    deletion_policy: Literal["Orphan", "Delete"] = Field(
        default="Orphan",
        description=(
            "What happens to the generated CRD when this definition is deleted. `Orphan` "
            "(the default) keeps the CRD and every object of it. `Delete` removes the CRD "
            "and with it all its objects: user data is lost."
        ),
    )
    history_limit: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="How many ended ProcessInstances to keep per object; older ones are pruned.",
    )
    relations: list[Relation] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "Related objects by name, e.g. an instance's `volumes` (its children) or the "
            "`network` it names: what `relatedRuns` and handlers' run requests act on."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    def relation(self, name: str) -> Relation | None:
        return next((r for r in self.relations if r.name == name), None)

    def initial(self, state_field: str) -> str | None:
        """The state an object is in while `state_field` is unset."""
        if state_field == "state":
            return self.initial_state
        return self.initial_states.get(state_field)


class ResourceDefinitionStatus(KattleModel):
    """What the operator made of the definition."""

    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation last acted on."
    )
    conditions: list[Condition] = conditions_field()
    crd_name: str | None = Field(default=None, description="The name of the generated CRD.")
    states: list[str] = Field(
        default_factory=list,
        description="Every state the type's processes use, sorted.",
    )
    processes: list[str] = Field(
        default_factory=list,
        description="The ProcessDefinitions of this type, sorted.",
    )


class ResourceDefinition(KattleResource):
    """Declares a resource type: Kattle generates a CRD for it and orchestrates its objects."""

    crd_info: ClassVar[CrdInfo] = CrdInfo(
        kind="ResourceDefinition",
        plural="resourcedefinitions",
        singular="resourcedefinition",
        scope="Cluster",
        short_names=("rd",),
        name_max_length=NAME_MAX,
        printer_columns=(
            PrinterColumn("Kind", ".spec.names.kind", description="The generated kind."),
            PrinterColumn("Group", ".spec.group"),
            PrinterColumn("Scope", ".spec.scope"),
            PrinterColumn("Initial", ".spec.initialState", description="The initial state."),
            PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                description="Whether the generated CRD is established and orchestrated.",
            ),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        ),
    )
    model_config = validated_by(
        cel(
            "self.metadata.name.matches('^[a-z][a-z0-9-]*$') "
            f"&& size(self.metadata.name) <= {NAME_MAX}",
            "metadata.name is the resource type used in process names (e.g. "
            "`instance` for `instance.start`): lowercase letters, digits and '-', "
            f"starting with a letter, at most {NAME_MAX} characters",
            field_path=".metadata.name",
        ),
    )

    kind: Literal["ResourceDefinition"] = "ResourceDefinition"
    spec: ResourceDefinitionSpec = Field(description="The resource type to generate.")
    status: ResourceDefinitionStatus | None = Field(
        default=None, description="Observed by the operator."
    )
