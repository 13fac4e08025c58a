"""Applies a ResourceDefinition's standard processes (`standardProcesses`) and prunes the
ones it no longer asks for. Which ones, with which states: `machine/process_sets.py`.

Generated definitions carry the type's label and an ownerReference to the
ResourceDefinition, so they go with it (garbage collection). A ProcessDefinition of the same
name written by someone else is never taken over: the condition says to exclude its verb.
"""

from __future__ import annotations

import logging

from kattle.api.processdefinition import ProcessDefinition
from kattle.api.resourcedefinition import ResourceDefinition
from kattle.kube.client import ApiError
from kattle.kube.kinds import PROCESS_DEFINITIONS
from kattle.machine.process_sets import PROCESS_SET_LABEL, standard_processes
from kattle.runner.engine import Engine

logger = logging.getLogger(__name__)

Condition = tuple[str, bool, str, str]  # type, status, reason, message
CONDITION = "ProcessesGenerated"


def _ours(definition: ProcessDefinition, type_name: str) -> bool:
    return definition.metadata.labels.get(PROCESS_SET_LABEL) == type_name


async def reconcile_standard_processes(
    engine: Engine, resource: ResourceDefinition
) -> list[Condition]:
    """Brings the generated definitions in line with `resource`; the condition to report
    (none for a type that asks for no standard processes and has none left)."""
    type_name = resource.metadata.name or ""
    wanted = standard_processes(resource)
    known = engine.catalog.processes
    problems = []
    for name, manifest in wanted.items():
        current = known.get(name)
        if current is not None and not _ours(current, type_name):
            problems.append(
                f"ProcessDefinition {name} exists and was not generated for {type_name}: "
                "exclude its verb in standardProcesses to keep yours, or delete it"
            )
            continue
        try:
            await engine.kube.patch(
                PROCESS_DEFINITIONS, name, manifest, patch_type="apply", force=True
            )
        except ApiError as error:
            problems.append(f"the API server refused {name}: {error.message}")
    stale = [n for n, p in known.items() if _ours(p, type_name) and n not in wanted]
    for name in stale:
        await engine.kube.delete(PROCESS_DEFINITIONS, name)
        logger.info("deleted %s: %s no longer asks for it in standardProcesses", name, type_name)
    if problems:
        return [(CONDITION, False, "Conflict", "; ".join(problems))]
    if not wanted:
        conditions = resource.status.conditions if resource.status else []
        if any(c.type == CONDITION for c in conditions):  # it asked before: say it stopped
            return [(CONDITION, False, "NotRequested", "standardProcesses is not set")]
        return []
    return [(CONDITION, True, "Generated", f"generated {', '.join(sorted(wanted))}")]
