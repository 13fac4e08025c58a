"""The plain types a run is driven with: where it is going, and how a drive came back."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from kattle.api.processdefinition import ProcessDefinition, ProcessDefinitionSpec, StateRoute
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
    # The way through the process this run follows, once it is known from the object's
    # state (a state map gives each start state its own transitioning and done states).
    route: StateRoute | None = None

    @property
    def spec(self) -> ProcessDefinitionSpec:
        return self.definition.spec

    @property
    def process(self) -> str:
        return self.definition.metadata.name or ""

    def along(self, state: str | None) -> Target:
        """The target with the route that `state` (a start or transitioning state) takes."""
        return replace(self, route=self.spec.route(state) or self.route)

    @property
    def transitioning(self) -> str:
        return self._route().transitioning

    @property
    def done(self) -> str:
        return self._route().done

    def _route(self) -> StateRoute:
        if self.route is not None:
            return self.route
        # Before the object's state is known (a run that never took it): the first way
        # through, which is the only one unless the process has a state map.
        routes = self.spec.routes()
        if not routes:
            raise ValueError(f"{self.definition.metadata.name} has no start states")
        return routes[0]


class LostObjectError(Exception):
    """The object is no longer held by this run."""


class RefusedWriteError(Exception):
    """The API server refused a write while this run still holds the object."""


def now() -> datetime:
    return datetime.now(UTC)
