"""The catalog: every definition the operator knows, and what follows from them together.

Watch events keep it current; the runner asks it which process applies, which handlers a
process calls and in which order. Rules that need several objects at once (a process of an
unknown type, two processes sharing a transitioning state) are checked here too, so they can
be reported on the definitions' status. Pure data in, plain answers out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kattle.api.processdefinition import HandlerPhase, ProcessDefinition, ProcessDefinitionSpec
from kattle.api.processhandler import ProcessHandler, ProcessHandlerSpec
from kattle.api.resourcedefinition import ResourceDefinition
from kattle.machine import delegation
from kattle.machine.admission import current_state
from kattle.machine.globs import selector_matches

PHASE_ORDER: dict[HandlerPhase, int] = {"pre": 0, "handler": 1, "post": 2}


@dataclass(frozen=True)
class Step:
    """One handler call in a process plan."""

    index: int
    handler: str
    phase: HandlerPhase
    priority: int
    spec: ProcessHandlerSpec


def overridden(plan: list[Step], answered: Step) -> list[Step]:
    """With `handlerMode: FirstResult`, the handler-phase steps after `answered`, which its
    reply ends the phase before (Cattle's handler override). Listeners are never skipped."""
    if answered.phase != "handler":
        return []
    return [s for s in plan if s.phase == "handler" and s.index > answered.index]


def without_logic(
    spec: ProcessDefinitionSpec, serving: list[Step], trigger: str, chain: str | None = None
) -> bool:
    """Whether a run has nothing to do but change the state: no handler serves its object
    (`serving`: the plan's steps that do), no related runs, no delegate, it is no replay
    (which carries its failed run's writes) and names no chain (handed the object as the
    run ends). Cattle then "simply updates the state and is done", in one write."""
    return not (serving or spec.related_runs or spec.delegate or trigger == "replay" or chain)


def verb_of(process: str) -> str:
    return process.partition(".")[2]


@dataclass
class Catalog:
    """Definitions by name: resource types, processes and handlers."""

    resources: dict[str, ResourceDefinition] = field(default_factory=dict)
    processes: dict[str, ProcessDefinition] = field(default_factory=dict)
    handlers: dict[str, ProcessHandler] = field(default_factory=dict)

    # -- keeping it current -----------------------------------------------------------------

    def put(self, definition: ResourceDefinition | ProcessDefinition | ProcessHandler) -> None:
        name = definition.metadata.name or ""
        if isinstance(definition, ResourceDefinition):
            self.resources[name] = definition
        elif isinstance(definition, ProcessDefinition):
            self.processes[name] = definition
        else:
            self.handlers[name] = definition

    def drop(self, kind: str, name: str) -> None:
        if kind == "ResourceDefinition":
            self.resources.pop(name, None)
        elif kind == "ProcessDefinition":
            self.processes.pop(name, None)
        elif kind == "ProcessHandler":
            self.handlers.pop(name, None)

    # -- questions the runner asks ----------------------------------------------------------

    def resource_of_kind(self, group: str, kind: str) -> ResourceDefinition | None:
        for definition in self.resources.values():
            spec = definition.spec
            if spec.group == group and spec.names.kind == kind:
                return definition
        return None

    def process_spec(self, name: str) -> ProcessDefinitionSpec | None:
        definition = self.processes.get(name)
        return definition.spec if definition is not None else None

    def processes_of(self, resource_type: str) -> list[ProcessDefinition]:
        return sorted(
            (p for p in self.processes.values() if p.spec.resource_type == resource_type),
            key=lambda p: p.metadata.name or "",
        )

    def triggered(self, resource_type: str, trigger: str) -> list[ProcessDefinition]:
        return [p for p in self.processes_of(resource_type) if p.spec.trigger == trigger]

    def create_process(self, resource_type: str) -> ProcessDefinition | None:
        """The process that runs when an object is created; the first by name if several."""
        found = self.triggered(resource_type, "create")
        return found[0] if found else None

    def delete_process(
        self, resource_type: str, status: Mapping[str, Any]
    ) -> ProcessDefinition | None:
        """The delete-triggered process that may start from the object's `status`, if any
        (each process reads its own `stateField`)."""
        resource = self.resources.get(resource_type)
        for process in self.triggered(resource_type, "delete"):
            field = process.spec.state_field
            initial = resource.spec.initial(field) if resource else None
            if current_state(status, field, initial) in process.spec.starts():
                return process
        return None

    def plan(self, process: str) -> list[Step]:
        """The handlers `process` calls: pre, handler, post; by priority, then by name."""
        attached = [
            h
            for h in self.handlers.values()
            if any(selector_matches(s, process) for s in h.spec.processes)
        ]
        attached.sort(
            key=lambda h: (PHASE_ORDER[h.spec.phase], h.spec.priority, h.metadata.name or "")
        )
        return [
            Step(i, h.metadata.name or "", h.spec.phase, h.spec.priority, h.spec)
            for i, h in enumerate(attached)
        ]

    def attached_to(self, handler: str) -> list[str]:
        """The processes, by name, whose plans call `handler`."""
        found = self.handlers.get(handler)
        if found is None:
            return []
        selectors = found.spec.processes
        return sorted(p for p in self.processes if any(selector_matches(s, p) for s in selectors))

    def states(self, resource_type: str) -> list[str]:
        resource = self.resources.get(resource_type)
        found = (
            {resource.spec.initial_state, *resource.spec.initial_states.values()}
            if resource
            else set()
        )
        for process in self.processes_of(resource_type):
            for route in process.spec.routes():
                found.update((route.start, route.transitioning, route.done))
        return sorted(found)

    # -- rules across objects ---------------------------------------------------------------

    def process_problems(self, name: str) -> list[str]:
        """Why a process cannot run as defined, in words for its status; empty if it can."""
        process = self.processes.get(name)
        if process is None:
            return [f"no ProcessDefinition named {name}"]
        spec = process.spec
        problems = []
        if spec.resource_type not in self.resources:
            problems.append(f"resource type {spec.resource_type!r} has no ResourceDefinition")
        if spec.on_error and spec.on_error not in self.processes:
            problems.append(f"onError process {spec.on_error} has no ProcessDefinition")
        elif spec.on_error:
            # A failed run leaves the object in the transitioning state; the onError run
            # would be canceled there, leaving it in error with nobody taking over.
            rescue = self.processes[spec.on_error].spec.starts()
            problems.extend(
                f"onError process {spec.on_error} cannot start from {state!r}, where a failed "
                f"run leaves the object: add it to {spec.on_error}'s start states"
                for state in spec.transitionings()
                if state not in rescue
            )
        for other in self.processes_of(spec.resource_type):
            if other.metadata.name == name or other.spec.state_field != spec.state_field:
                continue
            problems.extend(
                f"transitioning state {state!r} is also {other.metadata.name}'s: "
                "a transitioning state must tell which process runs"
                for state in spec.transitionings()
                if state in other.spec.transitionings()
            )
        problems.extend(self._related_runs_problems(name))
        problems.extend(delegation.definition_problems(name, spec, self.process_spec))
        if spec.trigger == "create":
            first = self.create_process(spec.resource_type)
            if first is not None and first.metadata.name != name:
                problems.append(
                    f"{first.metadata.name} is already the create process of "
                    f"{spec.resource_type}; only one runs on create"
                )
        return problems

    def _related_runs_problems(self, name: str) -> list[str]:
        spec = self.processes[name].spec
        resource = self.resources.get(spec.resource_type)
        problems = []
        for index, step in enumerate(spec.related_runs):
            where = f"relatedRuns[{index}]"
            relation = resource.spec.relation(step.relation) if resource else None
            target = self.processes.get(step.process)
            if resource is not None and relation is None:
                problems.append(f"{where}: {spec.resource_type} has no relation {step.relation!r}")
            if target is None:
                problems.append(f"{where}: {step.process} has no ProcessDefinition")
            elif relation is not None and target.spec.resource_type != relation.type:
                problems.append(
                    f"{where}: {step.process} is not a process of {relation.type}, the type "
                    f"of relation {step.relation!r}"
                )
        cycle = self.related_cycle(name)
        if cycle:
            problems.append(
                f"related runs form a cycle, {' -> '.join(cycle)}: a run would wait for itself"
            )
        return problems

    def related_cycle(self, name: str) -> list[str]:
        """A path of relatedRuns from `name` back to itself, or [] when there is none."""
        path: list[str] = []
        seen: set[str] = set()

        def visit(process: str) -> bool:
            for step in (
                self.processes[process].spec.related_runs if process in self.processes else []
            ):
                path.append(step.process)
                if step.process == name:
                    return True
                if step.process not in seen:
                    seen.add(step.process)
                    if visit(step.process):
                        return True
                path.pop()
            return False

        return [name, *path] if visit(name) else []

    def relation_problems(self, name: str) -> list[str]:
        """Why relations of a resource type cannot be followed, for its status."""
        resource = self.resources.get(name)
        if resource is None:
            return [f"no ResourceDefinition named {name}"]
        problems = []
        for relation in resource.spec.relations:
            other = self.resources.get(relation.type)
            if other is None:
                problems.append(
                    f"relation {relation.name}: resource type {relation.type!r} has no "
                    "ResourceDefinition"
                )
            elif other.spec.scope != resource.spec.scope:
                problems.append(
                    f"relation {relation.name}: {relation.type} is {other.spec.scope} and "
                    f"{name} is {resource.spec.scope}; related objects share the object's "
                    "scope (and namespace)"
                )
        return problems

    def handler_problems(self, name: str) -> list[str]:
        """Why a handler is never called, in words for its status; empty if some process
        calls it. (The Secrets and ConfigMaps it names are checked by the controller.)"""
        handler = self.handlers.get(name)
        if handler is None:
            return [f"no ProcessHandler named {name}"]
        if self.attached_to(name):
            return []
        return [
            f"no ProcessDefinition matches {', '.join(handler.spec.processes)}: "
            "the handler is called once one does"
        ]

    def resource_problems(self, name: str) -> list[str]:
        """Problems of a resource type that stop its objects from being orchestrated."""
        resource = self.resources.get(name)
        if resource is None:
            return [f"no ResourceDefinition named {name}"]
        problems = []
        for other_name, other in self.resources.items():
            if other_name == name:
                continue
            same_group = other.spec.group == resource.spec.group
            if same_group and other.spec.names.plural == resource.spec.names.plural:
                problems.append(
                    f"ResourceDefinition {other_name} already generates "
                    f"{resource.spec.names.plural}.{resource.spec.group}"
                )
        return problems
