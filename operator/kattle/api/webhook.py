"""The webhook protocol: what the operator POSTs to a handler and what it may answer.

Version `kattle.dev/v1alpha1`. The operator validates every reply with these models, and
the handler SDK builds replies with them, so both sides agree by construction.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from kattle.api.common import API_VERSION, PROCESS_PATTERN, KattleModel
from kattle.api.generated import ResourceStatus
from kattle.api.processdefinition import HandlerPhase

MAX_REPLY_BYTES = 1024 * 1024
# The status fields the operator keeps (state, transitioning, activeRun, lastRun, ...): a
# handler writing them could skip the state machine or free an object another run holds.
OPERATOR_STATUS_FIELDS = frozenset(
    field.alias or name for name, field in ResourceStatus.model_fields.items()
)


class RunInfo(KattleModel):
    """The ProcessInstance the call belongs to."""

    name: str = Field(description="The ProcessInstance's name.")
    namespace: str = Field(description="The ProcessInstance's namespace.")
    uid: str = Field(description="The ProcessInstance's uid.")
    trigger: str = Field(
        description="What asked for the run: manual, create, delete, chain, onError, related."
    )


class ProcessEvent(KattleModel):
    """One request to a handler: run your logic for this step of this process."""

    api_version: Literal["kattle.dev/v1alpha1"] = API_VERSION  # type: ignore[assignment]
    kind: Literal["ProcessEvent"] = "ProcessEvent"
    process: str = Field(description="The process, e.g. `instance.start`.")
    phase: HandlerPhase = Field(description="pre, handler or post.")
    handler: str = Field(description="The ProcessHandler being called.")
    attempt: int = Field(ge=1, description="1 on the first call of this step, then 2, 3...")
    idempotency_key: str = Field(
        description=(
            "The same for every attempt of this step of this run, also after an operator "
            "restart: a handler seeing a key again must give the same answer."
        )
    )
    run: RunInfo = Field(description="The run this call belongs to.")
    from_state: str | None = Field(
        default=None, alias="fromState", description="The state the run started from."
    )
    transitioning: str = Field(description="The state the object is in while the process runs.")
    done: str = Field(description="The state the object will be in when the process ends.")
    resource: dict[str, Any] = Field(description="The object, as the API server has it.")
    data: dict[str, Any] = Field(
        default_factory=dict, description="Process data: input plus earlier handlers' data."
    )


class Progress(KattleModel):
    """How far a long step has come, reported with `retryAfterSeconds`."""

    percent: int | None = Field(default=None, ge=0, le=100, description="0 to 100.")
    message: str | None = Field(
        default=None, max_length=1024, description="What the step is doing, e.g. `copying`."
    )


class EventRequest(KattleModel):
    """A Kubernetes Event the handler asks the operator to post on the object."""

    type: Literal["Normal", "Warning"] = Field(default="Normal", description="Normal or Warning.")
    reason: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9]*$", max_length=128, description="CamelCase reason."
    )
    message: str = Field(max_length=1024, description="What happened, for humans.")


class RunRequest(KattleModel):
    """A run the handler asks for on a related object, waited for before the next handler."""

    process: str = Field(
        pattern=PROCESS_PATTERN,
        max_length=127,
        description=(
            "The process to run, e.g. `volume.activate`: a process of a type the run's own "
            "type has a relation to."
        ),
    )
    resource: str = Field(
        min_length=1, max_length=253, description="The object's name, in the run's namespace."
    )
    data: dict[str, Any] = Field(default_factory=dict, description="Input data for that run.")


class ProcessReply(KattleModel):
    """A handler's answer. An empty object `{}` means: done, nothing to add."""

    data: dict[str, Any] | None = Field(
        default=None, description="Merged into the process data (JSON merge patch rules)."
    )
    status: dict[str, Any] | None = Field(
        default=None,
        description=(
            'Merged into the object\'s status when the process ends, e.g. {"ip": ...}. The '
            "operator's own fields (state, transitioning, transitioningMessage, process, "
            "activeRun, previousState, lastRun, conditions) may not be written."
        ),
    )
    chain: str | None = Field(
        default=None,
        description="A process of the same type to continue with instead of setting done.",
    )
    delegate: str | None = Field(
        default=None,
        description=(
            "A process of the same type to hand the run to, in the same ProcessInstance, once "
            "this process's handlers are done (Cattle's shouldDelegate): it must start from "
            "this process's done state. Overrides the definition's `delegate`."
        ),
    )
    retry_after_seconds: int | None = Field(
        default=None, ge=0, le=3600, description="Call this step again after this many seconds."
    )
    error: str | None = Field(
        default=None, max_length=4096, description="The step failed: why, for the object's status."
    )
    progress: Progress | None = Field(
        default=None,
        description=(
            "With `retryAfterSeconds`: how far the work has come. The object shows it "
            "(`status.transitioningProgress`, `status.transitioningMessage`) until the step "
            "is called again, and the run's log keeps it (Cattle's progress replies, which "
            "kept long calls alive)."
        ),
    )
    continue_: bool | None = Field(
        default=None,
        alias="continue",
        description=(
            "For a process with `handlerMode: FirstResult`: let the next handler run too, "
            "as if this one had not answered (Cattle's shouldContinue). Ignored otherwise."
        ),
    )
    permanent: bool | None = Field(
        default=None,
        description=(
            "With `error`: the failure is for good (bad input, a refused request), so the "
            "step is not retried whatever the handler's retryLimit; the run fails (or its "
            "onError takes over, or failurePolicy Ignore goes on) at once."
        ),
    )
    message: str | None = Field(
        default=None, max_length=4096, description="A note for the run's log."
    )
    events: list[EventRequest] = Field(
        default_factory=list, max_length=10, description="Events to post on the object."
    )
    runs: list[RunRequest] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Runs on related objects to start and wait for before the next handler is called. "
            "Each outcome is merged into the process data under `runs.<run name>` (process, "
            "resource, phase, exitReason, message, data); one that fails fails this step."
        ),
    )

    @field_validator("status")
    @classmethod
    def _handlers_keep_off_the_operators_fields(
        cls, status: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        taken = sorted(OPERATOR_STATUS_FIELDS.intersection(status or {}))
        if taken:
            raise ValueError(
                f"{', '.join(taken)}: the operator's own status fields; handlers may write "
                f"others (the operator keeps {', '.join(sorted(OPERATOR_STATUS_FIELDS))})"
            )
        return status
