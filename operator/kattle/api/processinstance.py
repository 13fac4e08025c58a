"""ProcessInstance: one run of a process on one object, and its log.

Users create one to run a manual process (`kubectl create`, or `kattle run`); the operator
creates them for `create` and `delete` triggers and for chained and onError processes.
Its status is Cattle's process log: every transition and every handler call, with times
and outcomes. The spec is immutable: a run is a record, so running again means a new one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from kattle.api.common import (
    NAME_MAX,
    Condition,
    CrdInfo,
    KattleModel,
    KattleResource,
    PrinterColumn,
    ProcessName,
    StateName,
    cel,
    conditions_field,
    validated_by,
)
from kattle.api.processdefinition import HandlerPhase

# Pending: admitted but waiting for another run on the object to end. Retrying: a handler
# failed and the run waits out its backoff. The other three are final.
RunPhase = Literal["Pending", "Running", "Retrying", "Succeeded", "Failed", "Canceled"]
FINAL_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Canceled"})

ExitReason = Literal[
    "Done",  # the done state was set
    "Chained",  # a handler chained another process, which continues from here
    "Canceled",  # the object was no longer in a start state when the run could begin
    "RetriesExhausted",  # a handler kept failing; the object keeps transitioning=error
    "TimedOut",  # as RetriesExhausted, the last attempt having had no answer in time
    "PermanentError",  # a handler's reply said its error is permanent: not retried
    "OnError",  # retries were exhausted and the onError process took over
    "ResourceGone",  # the object was deleted before the run ended
    "Invalid",  # the process cannot run as defined (unknown process or type, bad definition)
    "AlreadyDone",  # the object was already in the done state: nothing to do (Cattle's)
    "Cycle",  # a related run would wait for a run it was started by: refused, not deadlocked
]
RunTrigger = Literal["manual", "create", "delete", "chain", "onError", "related", "replay"]
CallOutcome = Literal[
    "Succeeded", "Error", "Timeout", "RetryAfter", "Chained", "Ignored", "Skipped"
]

HISTORY_MAX = 256
# Related runs nest at most this deep: deeper is a cycle no definition check caught.
MAX_DEPTH = 16


class ResourceReference(KattleModel):
    """The object the process runs on, in the ProcessInstance's namespace (or cluster-wide)."""

    name: str = Field(
        min_length=1,
        max_length=253,
        description="The object's name. Its type comes from the process name's prefix.",
    )
    uid: str | None = Field(
        default=None,
        max_length=64,
        description="The object's UID, to tell it from a later object of the same name.",
    )


class Ancestor(KattleModel):
    """A run that a related run was started by, directly or through others."""

    run: str = Field(max_length=253, description="The ProcessInstance's name.")
    process: ProcessName = Field(description="Its process.")
    resource: str = Field(max_length=253, description="The object it runs on.")


class ProcessInstanceSpec(KattleModel):
    """Which process to run on which object, with what input."""

    model_config = validated_by(
        cel(
            "!has(self.chain) || self.chain.split('.')[0] == self.process.split('.')[0]",
            "chain must name a process of the same type as process",
            field_path=".chain",
        ),
    )

    process: ProcessName = Field(description="The process to run, e.g. `instance.start`.")
    resource: ResourceReference = Field(description="The object to run it on.")
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="Input data, passed to every handler and merged with what they return.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    trigger: RunTrigger = Field(
        default="manual",
        description=(
            "What asked for the run: `manual` (a user), `create` or `delete` (the object's "
            "lifecycle), `chain` or `onError` (another run handed its object over), `related` "
            "(a run on a related object that waits for this one)."
        ),
    )
    parent: str | None = Field(
        default=None,
        max_length=253,
        description=(
            "The ProcessInstance that chained this one or handed over to it (`chain`, "
            "`onError`), or that started it on a related object and waits for it (`related`)."
        ),
    )
    chain: ProcessName | None = Field(
        default=None,
        description=(
            "A process to run on the object once this one succeeds: when it ends in its done "
            "state, and also when it finds the object there already (Cattle's chainProcess). "
            "The run then ends `Chained` and hands the object to a run of `chain` "
            "(`trigger: chain`), which starts from the done state. A handler's `chain` reply "
            "comes first."
        ),
    )
    ancestry: list[Ancestor] = Field(
        default_factory=list,
        max_length=MAX_DEPTH,
        description=(
            "For a `related` run: the runs it was started by, the first one first and its "
            "parent last. A run on an object one of them holds would wait forever: it fails."
        ),
    )


class Transition(KattleModel):
    """A state change the run made on the object."""

    field: str = Field(max_length=NAME_MAX, description="The status field, e.g. `state`.")
    from_: str = Field(alias="from", max_length=NAME_MAX, description="The state before.")
    to: StateName = Field(description="The state after.")
    time: datetime = Field(description="When the change was written.")


class HandlerCall(KattleModel):
    """One call of one handler webhook."""

    handler: str = Field(max_length=253, description="The ProcessHandler called.")
    phase: HandlerPhase = Field(description="pre, handler or post.")
    attempt: int = Field(ge=1, description="1 for the first call of this step, then 2, 3...")
    idempotency_key: str = Field(
        max_length=256,
        description="The same for every attempt of the same step of the same run.",
    )
    start: datetime = Field(description="When the request was sent.")
    stop: datetime | None = Field(default=None, description="When the reply came or it failed.")
    outcome: CallOutcome | None = Field(default=None, description="How the call ended.")
    message: str = Field(
        default="", max_length=4096, description="The handler's or the error's message."
    )


class ChildRun(KattleModel):
    """A run this run started on a related object, and how it ended."""

    name: str = Field(max_length=253, description="The child ProcessInstance.")
    process: ProcessName = Field(description="Its process.")
    resource: str = Field(max_length=253, description="The related object it ran on.")
    relation: str = Field(max_length=NAME_MAX, description="The relation it was found through.")
    attempt: int = Field(ge=1, description="Which attempt of the step it belongs to.")
    phase: RunPhase | None = Field(default=None, description="The child's phase when last seen.")
    exit_reason: ExitReason | None = Field(default=None, description="Why the child ended.")
    start_time: datetime | None = Field(default=None, description="When the child began.")
    end_time: datetime | None = Field(default=None, description="When the child ended.")


class Replay(KattleModel):
    """The latest replay asked of a failed run (its `kattle.dev/replay` annotation)."""

    requested: str = Field(max_length=253, description="The annotation's value it answers.")
    time: datetime = Field(description="When the operator answered it.")
    run: str | None = Field(
        default=None, max_length=253, description="The run that replays this one."
    )
    refused: str | None = Field(
        default=None, max_length=4096, description="Why it was not replayed."
    )


class ProcessInstanceStatus(KattleModel):
    """The run's progress and log (Cattle's process log)."""

    phase: RunPhase = Field(default="Pending", description="Where the run is.")
    exit_reason: ExitReason | None = Field(
        default=None, description="Why the run ended; set with a final phase."
    )
    message: str = Field(default="", max_length=32768, description="The last error or note.")
    start_time: datetime | None = Field(default=None, description="When the run began.")
    end_time: datetime | None = Field(default=None, description="When the run ended.")
    attempts: int = Field(
        default=0, ge=0, description="How many times the run was tried: 1, plus one per retry."
    )
    next_attempt_time: datetime | None = Field(
        default=None, description="When a Retrying run is tried again."
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="Process data: the input merged with every handler's reply data.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    chained_to: str | None = Field(
        default=None, description="The ProcessInstance this run chained or handed over to."
    )
    delegated_to: list[ProcessName] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "The processes this run was handed to in turn (Cattle's delegate), within this "
            "record: the last one set the done state."
        ),
    )
    status_writes: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "What the handlers that succeeded asked to write on the object's status, kept by "
            "a run that failed: its replay writes them when it ends, without calling them."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    replay: Replay | None = Field(
        default=None, description="The latest replay asked of this run, and its answer."
    )
    conditions: list[Condition] = conditions_field()
    children: list[ChildRun] = Field(
        default_factory=list,
        max_length=HISTORY_MAX,
        description="Runs this run started on related objects (relatedRuns, handler requests).",
    )
    transitions: list[Transition] = Field(
        default_factory=list,
        max_length=HISTORY_MAX,
        description="Every state change the run made, oldest first.",
    )
    handler_calls: list[HandlerCall] = Field(
        default_factory=list,
        max_length=HISTORY_MAX,
        description=f"Handler calls, oldest first; the latest {HISTORY_MAX} are kept.",
    )


class ProcessInstance(KattleResource):
    """One run of a process on one object, with the log of what it did."""

    crd_info: ClassVar[CrdInfo] = CrdInfo(
        kind="ProcessInstance",
        plural="processinstances",
        singular="processinstance",
        scope="Namespaced",
        short_names=("pi",),
        printer_columns=(
            PrinterColumn("Process", ".spec.process"),
            PrinterColumn("Resource", ".spec.resource.name"),
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Exit", ".status.exitReason"),
            PrinterColumn("Attempts", ".status.attempts", type="integer", priority=1),
            PrinterColumn("Trigger", ".spec.trigger", priority=1),
            PrinterColumn("Parent", ".spec.parent", priority=1),
            PrinterColumn("Message", ".status.message", priority=1),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        ),
        # A run the operator starts itself writes its record once, complete, as it ends:
        # one write where a status subresource makes it two (a create drops the status).
        # kattle.api.access says who may write a record.
        status_subresource=False,
    )
    model_config = validated_by(
        cel(
            "self.spec == oldSelf.spec",
            "spec is immutable: a ProcessInstance records one run; create a new one to run "
            "the process again",
            field_path=".spec",
        ),
    )

    kind: Literal["ProcessInstance"] = "ProcessInstance"
    spec: ProcessInstanceSpec = Field(description="The process, the object and the input.")
    status: ProcessInstanceStatus | None = Field(
        default=None, description="The run's progress and log, written by the operator."
    )
