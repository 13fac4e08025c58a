"""The plain types a run is driven with: where it is going, and how a drive came back."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from kattle.api.processdefinition import ProcessDefinition, ProcessDefinitionSpec
from kattle.api.resourcedefinition import ResourceDefinition
from kattle.kube.client import Kind


class Outcome(enum.Enum):
    ENDED = "ended"
    WAITING = "waiting"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    holder: str | None = None


@dataclass(frozen=True)
class Target:
    """The process and the object a run is on, once its definitions are known."""

    definition: ProcessDefinition
    resource: ResourceDefinition
    kind: Kind
    namespace: str | None  # the object's; None for a cluster-scoped kind

    @property
    def spec(self) -> ProcessDefinitionSpec:
        return self.definition.spec


class LostObjectError(Exception):
    """The object is no longer held by this run."""


class RefusedWriteError(Exception):
    """The API server refused a write while this run still holds the object."""


def now() -> datetime:
    return datetime.now(UTC)
