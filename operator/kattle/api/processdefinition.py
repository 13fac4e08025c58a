"""ProcessDefinition: one Cattle process of a resource type, e.g. `instance.start`.

A process may begin only when its object is in one of the `start` states; it sets the
`transitioning` state, runs the handlers attached to it and sets the `done` state. Its name
is `<resource type>.<verb>`, so `kubectl get pd` reads like Cattle's process list.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from kattle.api.common import (
    NAME_MAX,
    Condition,
    CrdInfo,
    KattleModel,
    KattleResource,
    PrinterColumn,
    ProcessName,
    ResourceTypeName,
    StateName,
    cel,
    conditions_field,
    immutable,
    string_set,
    validated_by,
)

Trigger = Literal["create", "delete", "manual"]
HandlerPhase = Literal["pre", "handler", "post"]


class RelatedRuns(KattleModel):
    """Runs of a process on every object of a relation, waited for (Cattle's instance.start
    activating the instance's volumes and nics first)."""

    relation: str = Field(
        pattern=r"^[a-z][a-zA-Z0-9]*$",
        max_length=NAME_MAX,
        description="A relation of the process's resource type, e.g. `volumes`.",
    )
    process: ProcessName = Field(
        description="The process to run on each related object, e.g. `volume.activate`."
    )
    when: Literal["before", "after"] = Field(
        default="before",
        description="`before` (the default) the process's handlers, or `after` them.",
    )
    max_concurrent: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="How many of these runs go at once (10 by default); the rest wait their turn.",
    )
    retry_limit: int = Field(
        default=3,
        ge=0,
        le=1000,
        description=(
            "How many times the step is tried again when a related run fails (with Cattle's "
            "backoff), before this process's run fails (or its onError takes over)."
        ),
    )


class StateRoute(KattleModel):
    """One way through a process: from `start`, through `transitioning`, to `done`."""

    model_config = validated_by(
        cel(
            "self.transitioning != self.done",
            "done must differ from transitioning: an object in its transitioning state is "
            "still running the process",
            field_path=".done",
        ),
    )

    start: StateName = Field(description="A state the process may start from.")
    transitioning: StateName = Field(description="The state while it runs from `start`.")
    done: StateName = Field(description="The state it ends in, from `start`.")


RecordMode = Literal["Always", "OnFailure"]
HandlerMode = Literal["All", "FirstResult"]
# The triggers whose runs may go unrecorded: the operator starts them from the object alone,
# so it can start them again, by name, from the object alone after a restart.
UNRECORDED_TRIGGERS = frozenset({"create", "delete"})


class ProcessDefinitionSpec(KattleModel):
    """The states a process moves an object through, and what starts it."""

    model_config = validated_by(
        cel(
            "has(self.stateMap) != (has(self.start) && has(self.transitioning) && has(self.done))",
            "set either start, transitioning and done, or stateMap (not both)",
        ),
        cel(
            "!has(self.transitioning) || !has(self.start) || !(self.transitioning in self.start)",
            "transitioning must not be one of the start states: a process must leave its "
            "start state while it runs",
            field_path=".transitioning",
        ),
        cel(
            "!has(self.transitioning) || !has(self.done) || self.transitioning != self.done",
            "done must differ from transitioning: an object in its transitioning state is "
            "still running the process",
            field_path=".done",
        ),
        cel(
            "!has(self.stateMap) || self.stateMap.all(r, "
            "!self.stateMap.exists(o, o.transitioning == r.start))",
            "a start state of the stateMap must not be one of its transitioning states: a "
            "process must leave its start state while it runs",
            field_path=".stateMap",
        ),
        cel(
            "!has(self.stateMap) || self.stateMap.all(r, "
            "self.stateMap.exists_one(o, o.start == r.start) && "
            "self.stateMap.exists_one(o, o.transitioning == r.transitioning))",
            "each start state and each transitioning state appears once in the stateMap, so "
            "the object's state tells which entry a run follows",
            field_path=".stateMap",
        ),
        cel(
            "!has(self.delegate) || self.delegate.startsWith(self.resourceType + '.')",
            "delegate must name a process of the same resource type, <resourceType>.<verb>",
            field_path=".delegate",
        ),
        cel(
            "!has(self.onError) || self.onError.startsWith(self.resourceType + '.')",
            "onError must name a process of the same resource type, <resourceType>.<verb>",
            field_path=".onError",
        ),
    )

    resource_type: ResourceTypeName = Field(
        description=(
            "The resource type the process belongs to: the name of a ResourceDefinition, "
            "e.g. `instance`. The process's own name must start with it."
        ),
        json_schema_extra=immutable("resourceType"),
    )
    start: list[StateName] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description=(
            "The states the process may start from (at least one). With `transitioning` "
            "and `done`; or leave all three out and give a `stateMap`."
        ),
        json_schema_extra=string_set(),
    )
    transitioning: StateName | None = Field(
        default=None,
        description="The state the object is in while the process runs, e.g. `starting`.",
    )
    done: StateName | None = Field(
        default=None,
        description="The state the object is in when the process ends well, e.g. `running`.",
    )
    state_map: list[StateRoute] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description=(
            "For a process whose transitioning and done states depend on where it starts "
            "(Cattle's update: inactive -> updating-inactive -> inactive, active -> "
            "updating-active -> active): one entry per start state, instead of `start`, "
            "`transitioning` and `done`."
        ),
    )
    state_field: str = Field(
        default="state",
        pattern=r"^[a-z][a-zA-Z0-9]*$",
        max_length=NAME_MAX,
        description=(
            "The status field the process moves, `state` by default. Cattle keeps other "
            "state machines beside the main one, e.g. `allocationState` or `healthState`."
        ),
    )
    on_error: ProcessName | None = Field(
        default=None,
        description=(
            "A process of the same type that takes over when this one fails for good "
            "(its retries are exhausted), e.g. `instance.error`."
        ),
    )
    delegate: ProcessName | None = Field(
        default=None,
        description=(
            "A process of the same type that this one hands its run to once its handlers "
            "succeed, in the same ProcessInstance (Cattle's delegate, e.g. agent.create "
            "delegating to agent.activate): the object goes from this process's "
            "transitioning state straight into the delegate's, which must start from this "
            "process's done state. Unlike a chain, one run, one record, one hold on the object."
        ),
    )
    trigger: Trigger = Field(
        default="manual",
        description=(
            "What starts the process: `create` runs it when an object is created, `delete` "
            "runs it before an object may go (a finalizer holds the object), `manual` (the "
            "default) runs it when a ProcessInstance asks for it, e.g. `kattle run`."
        ),
    )
    handler_mode: HandlerMode = Field(
        default="All",
        description=(
            "`All` (the default): every attached handler runs. `FirstResult`: Cattle's "
            "handler phase, where the first handler (by priority) that replies ends the "
            "`handler` phase unless its reply says `continue: true`, so a handler at priority "
            "1000 replaces one at 2000. Pre and post listeners always all run."
        ),
    )
    priority: int = Field(
        default=0,
        ge=-10000,
        le=10000,
        description=(
            "Which runs go first when more are waiting than `--max-active-runs` allows: "
            "higher first, then in the order they came (Cattle gave its system resources "
            "+1000). A run already going is never stopped for one of higher priority."
        ),
    )
    record: RecordMode = Field(
        default="Always",
        description=(
            "Which runs the operator started itself (on `create` and `delete`) keep a "
            "ProcessInstance: `Always` (the default) every one (a create run's is written "
            "once, complete, as it ends or first retries); `OnFailure` only those that "
            "fail, retry or are canceled, so a run that succeeds costs no record (the object's "
            "`status.lastRun` still shows it). Runs asked for by a ProcessInstance, and runs "
            "of chains, onError and relatedRuns, always keep theirs."
        ),
    )
    related_runs: list[RelatedRuns] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Processes to run on related objects, before or after this process's handlers, "
            "in this order; each step waits for all its runs, and one that fails fails the step."
        ),
    )

    def routes(self) -> list[StateRoute]:
        """Every way through the process: one per start state."""
        if self.state_map:
            return list(self.state_map)
        if self.transitioning is None or self.done is None:
            return []  # refused at `kubectl apply`; only a hand-built spec gets here
        # Not validated again: the spec's own fields were.
        return [
            StateRoute.model_construct(start=s, transitioning=self.transitioning, done=self.done)
            for s in self.start or []
        ]

    def route(self, state: str | None) -> StateRoute | None:
        """The way a run follows from `state`: by start state, or (a run being resumed) by
        transitioning state."""
        routes = self.routes()
        found = next((r for r in routes if r.start == state), None)
        return found or next((r for r in routes if r.transitioning == state), None)

    def starts(self) -> list[str]:
        return [r.start for r in self.routes()]

    def transitionings(self) -> list[str]:
        return list(dict.fromkeys(r.transitioning for r in self.routes()))

    def dones(self) -> list[str]:
        return list(dict.fromkeys(r.done for r in self.routes()))

    def related_steps(self, when: str) -> list[tuple[int, RelatedRuns]]:
        """The relatedRuns entries that run `when`, with their index in the list."""
        return [(i, r) for i, r in enumerate(self.related_runs) if r.when == when]


class AttachedHandler(KattleModel):
    """A handler attached to a process, in the order the process calls it."""

    name: str = Field(description="The ProcessHandler's name.")
    phase: HandlerPhase = Field(description="pre, handler or post.")
    priority: int = Field(description="Lower runs first within a phase; ties by name.")


class ProcessDefinitionStatus(KattleModel):
    """What the operator made of the definition."""

    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation last acted on."
    )
    conditions: list[Condition] = conditions_field()
    handlers: list[AttachedHandler] = Field(
        default_factory=list,
        description="The handlers the process calls, in the order it calls them.",
    )


class ProcessDefinition(KattleResource):
    """A Cattle process of a resource type: its start, transitioning and done states."""

    crd_info: ClassVar[CrdInfo] = CrdInfo(
        kind="ProcessDefinition",
        plural="processdefinitions",
        singular="processdefinition",
        scope="Cluster",
        short_names=("pd",),
        name_max_length=2 * NAME_MAX + 1,
        printer_columns=(
            PrinterColumn("Type", ".spec.resourceType", description="The resource type."),
            PrinterColumn("Start", ".spec.start", description="The start states."),
            PrinterColumn("Transitioning", ".spec.transitioning"),
            PrinterColumn("Done", ".spec.done"),
            PrinterColumn("Trigger", ".spec.trigger"),
            PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                description="Whether the process can run as defined.",
            ),
            PrinterColumn("Field", ".spec.stateField", priority=1),
            # Start, Transitioning and Done are empty for a process with a state map: its
            # entries in full, for `-o wide` (a column shows one value of a list path).
            PrinterColumn("State-Map", ".spec.stateMap", priority=1),
            PrinterColumn("On-Error", ".spec.onError", priority=1),
            PrinterColumn("Delegate", ".spec.delegate", priority=1),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        ),
    )
    model_config = validated_by(
        cel(
            "self.metadata.name.matches('^[a-z][a-z0-9-]*[.][a-z][a-z0-9-]*$')",
            "metadata.name must be <resourceType>.<verb>, e.g. instance.start: lowercase "
            "letters, digits and '-' on each side of one dot",
            field_path=".metadata.name",
        ),
        cel(
            "self.metadata.name.startsWith(self.spec.resourceType + '.')",
            "metadata.name must start with spec.resourceType and a dot, e.g. "
            "instance.start for resourceType instance",
            field_path=".metadata.name",
        ),
        cel(
            "!has(self.spec.onError) || self.spec.onError != self.metadata.name",
            "a process cannot be its own onError process",
            field_path=".spec.onError",
        ),
    )

    kind: Literal["ProcessDefinition"] = "ProcessDefinition"
    spec: ProcessDefinitionSpec = Field(description="The process's states and trigger.")
    status: ProcessDefinitionStatus | None = Field(
        default=None, description="Observed by the operator."
    )


__all__ = [
    "AttachedHandler",
    "HandlerPhase",
    "ProcessDefinition",
    "ProcessDefinitionSpec",
    "ProcessDefinitionStatus",
    "ProcessName",
    "StateRoute",
    "Trigger",
]
