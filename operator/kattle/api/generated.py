"""The kinds Kattle generates from ResourceDefinitions: their CRD and their status.

Every orchestrated object carries the same status fields (its state, whether it is
transitioning, the run that holds it, its last run), so `kubectl get` shows STATE and
PROCESS for every kind and the runner reads and writes them the same way. Handlers may add
fields of their own to the status (e.g. `status.ip`), so unknown fields are kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from kattle.api.common import CATEGORY, Condition, KattleModel, conditions_field
from kattle.api.openapi import structural_schema
from kattle.api.resourcedefinition import ResourceDefinition

GENERATED_CATEGORY = f"{CATEGORY}-resources"
# Set on every generated CRD, so the operator knows which CRDs are its own.
DEFINITION_LABEL = "kattle.dev/resource-definition"

Transitioning = Literal["yes", "no", "error"]


class RunSummary(KattleModel):
    """The last run that ended on the object."""

    name: str = Field(description="The ProcessInstance.")
    process: str = Field(description="The process it ran.")
    phase: str = Field(description="How it ended: Succeeded, Failed or Canceled.")
    exit_reason: str | None = Field(default=None, description="Why it ended.")
    end_time: datetime | None = Field(default=None, description="When it ended.")
    from_state: str | None = Field(default=None, description="The state it started from.")
    start_time: datetime | None = Field(default=None, description="When it took the object.")
    chained_to: str | None = Field(
        default=None, description="The run it handed the object to (chain, onError)."
    )
    data: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The run's process data when it is small (at most 4 KiB as JSON): kept here so "
            "the run's record gets it even if the operator stops before writing it."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class ResourceStatus(KattleModel):
    """The Cattle state of an orchestrated object, written by the Kattle operator."""

    state: str | None = Field(default=None, description="The object's state, e.g. `running`.")
    transitioning: Transitioning | None = Field(
        default=None,
        description=(
            "`yes` while a process runs, `error` when its handlers failed (the object stays "
            "in the transitioning state until a retry succeeds), `no` otherwise."
        ),
    )
    transitioning_message: str | None = Field(
        default=None,
        description=(
            "Why the object is transitioning with an error, or what a long step reports "
            "it is doing."
        ),
    )
    transitioning_progress: int | None = Field(
        default=None, description="How far a long step has come, 0 to 100, as it reports."
    )
    process: str | None = Field(default=None, description="The process running now, if any.")
    active_run: str | None = Field(
        default=None, description="The ProcessInstance that holds the object now, if any."
    )
    previous_state: str | None = Field(
        default=None, description="The state the running process started from."
    )
    last_run: RunSummary | None = Field(default=None, description="The last run that ended.")
    observed_generation: int | None = Field(
        default=None,
        description=(
            "The `metadata.generation` the operator last acted on: written with every state "
            "change, and on its own when the spec changes while no process runs."
        ),
    )
    conditions: list[Condition] = conditions_field()


def status_schema() -> dict[str, Any]:
    schema = structural_schema(ResourceStatus)
    # Handlers may write fields of their own, and processes may keep other state fields.
    schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


# STATE and PROCESS for everyone; `-o wide` adds what a failing or finished run left.
PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "State", "type": "string", "jsonPath": ".status.state"},
    {"name": "Process", "type": "string", "jsonPath": ".status.process"},
    {
        "name": "Transitioning",
        "type": "string",
        "jsonPath": ".status.transitioning",
        "priority": 1,
    },
    {
        "name": "Message",
        "type": "string",
        "jsonPath": ".status.transitioningMessage",
        "priority": 1,
    },
    {"name": "Last-Run", "type": "string", "jsonPath": ".status.lastRun.name", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def generated_crd(definition: ResourceDefinition) -> dict[str, Any]:
    """The CRD of the kind a ResourceDefinition declares."""
    spec = definition.spec
    names = spec.names
    singular = names.singular or names.kind.lower()
    categories = list(dict.fromkeys([*names.categories, GENERATED_CATEGORY]))
    description = (
        f"An object of kind {names.kind}, orchestrated by Kattle "
        f"(ResourceDefinition {definition.metadata.name})."
    )
    spec_schema = spec.schema_ or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{names.plural}.{spec.group}",
            "labels": {DEFINITION_LABEL: definition.metadata.name or ""},
        },
        "spec": {
            "group": spec.group,
            "names": {
                "kind": names.kind,
                "listKind": f"{names.kind}List",
                "plural": names.plural,
                "singular": singular,
                "shortNames": list(names.short_names),
                "categories": categories,
            },
            "scope": spec.scope,
            "versions": [
                {
                    "name": spec.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }
