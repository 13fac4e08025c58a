"""Keeps the catalog, the generated CRDs and the definitions' status in step with the API.

A ResourceDefinition becomes a CRD (server-side apply, so unchanged definitions write
nothing); once the API server has Established it, Kopf's scanning picks the new kind up
through its category and the operator orchestrates its objects with no restart. Problems
that involve several definitions are reported as a `Ready=False` condition on each one
affected, and as a Warning Event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kattle.api.generated import DEFINITION_LABEL, generated_crd
from kattle.api.processdefinition import ProcessDefinition
from kattle.api.processhandler import ProcessHandler, ProcessHandlerSpec
from kattle.api.resourcedefinition import DEFAULT_GROUP, ResourceDefinition
from kattle.controllers.standard_processes import Condition, reconcile_standard_processes
from kattle.kube.client import CRDS, ApiError, Kind
from kattle.kube.kinds import PROCESS_DEFINITIONS, PROCESS_HANDLERS, RESOURCE_DEFINITIONS
from kattle.machine.catalog import Catalog
from kattle.machine.conditions import set_condition, without_times
from kattle.runner.run import Engine
from kattle.webhooks.references import ObjectKind, ReferenceReader, ReferenceUnavailableError

logger = logging.getLogger(__name__)


ESTABLISH_TIMEOUT_SECONDS = 30.0
STATUS_WRITE_ATTEMPTS = 5
DISCOVERED_ANNOTATION = "kattle.dev/discovered"
CRD_FINALIZER = "kattle.dev/generated-crd"
MODELS: dict[str, type[ResourceDefinition | ProcessDefinition | ProcessHandler]] = {
    "ResourceDefinition": ResourceDefinition,
    "ProcessDefinition": ProcessDefinition,
    "ProcessHandler": ProcessHandler,
}
KINDS: dict[str, Kind] = {
    "ResourceDefinition": RESOURCE_DEFINITIONS,
    "ProcessDefinition": PROCESS_DEFINITIONS,
    "ProcessHandler": PROCESS_HANDLERS,
}


async def load_all(engine: Engine) -> None:
    """Fills the catalog before any run is driven, so no run sees half the definitions."""
    for kind_name, kind in KINDS.items():
        for body in await engine.kube.list(kind):
            engine.catalog.put(MODELS[kind_name].model_validate(body))


async def on_definition_event(
    engine: Engine, kind_name: str, body: Mapping[str, Any], event_type: str | None
) -> None:
    """A definition was listed, added, changed or deleted."""
    name = body["metadata"]["name"]
    deciding = kind_name == "ResourceDefinition" and event_type != "DELETED"
    if deciding and await _deletion_policy(engine, body):
        engine.catalog.drop(kind_name, name)
        await refresh_statuses(engine)
        return
    if event_type == "DELETED" or body["metadata"].get("deletionTimestamp"):
        engine.catalog.drop(kind_name, name)
    else:
        engine.catalog.put(MODELS[kind_name].model_validate(body))
    if kind_name == "ResourceDefinition" and event_type != "DELETED":
        definition = engine.catalog.resources[name]
        if event_type is None or not _settled(definition):
            await reconcile_resource_definition(engine, name)
    if kind_name == "ProcessDefinition" and event_type == "DELETED":
        # A standard process deleted (generated, or written by hand in its place) is
        # generated again while its type asks for it.
        owner = engine.catalog.resources.get(body.get("spec", {}).get("resourceType", ""))
        if owner is not None and owner.spec.standard_processes is not None:
            await reconcile_resource_definition(engine, owner.metadata.name or "")
    await refresh_statuses(engine)


async def _deletion_policy(engine: Engine, body: Mapping[str, Any]) -> bool:
    """Carries out `deletionPolicy`; True when the definition is on its way out.

    With `Delete`, the definition holds a finalizer so that its CRD (and with it every object
    of the kind) is deleted even if the definition goes while the operator is down. With
    `Orphan`, the default, nothing holds it and the CRD stays.
    """
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    wants = body.get("spec", {}).get("deletionPolicy") == "Delete"
    deleting = bool(meta.get("deletionTimestamp"))
    if deleting and CRD_FINALIZER in finalizers:
        if wants:
            spec = body["spec"]
            crd_name = f"{spec['names']['plural']}.{spec.get('group', DEFAULT_GROUP)}"
            crd = await engine.kube.get_or_none(CRDS, crd_name)
            labels = ((crd or {}).get("metadata") or {}).get("labels") or {}
            if crd is not None and labels.get(DEFINITION_LABEL) == meta["name"]:
                await engine.kube.delete(CRDS, crd_name)
                logger.info(
                    "deleted CRD %s of ResourceDefinition %s (deletionPolicy Delete)",
                    crd_name,
                    meta["name"],
                )
        finalizers.remove(CRD_FINALIZER)
    elif not deleting and wants and CRD_FINALIZER not in finalizers:
        finalizers.append(CRD_FINALIZER)
    elif not deleting and not wants and CRD_FINALIZER in finalizers:
        finalizers.remove(CRD_FINALIZER)
    else:
        return deleting
    # Gone, or changed since this body: the event that follows decides again.
    await engine.kube.patch(
        RESOURCE_DEFINITIONS,
        meta["name"],
        {"metadata": {"resourceVersion": meta["resourceVersion"], "finalizers": finalizers}},
        missing_ok=True,
        conflict_ok=True,
    )
    return deleting


def _settled(definition: ResourceDefinition) -> bool:
    """Ready for its current generation: an event about it is our own status write."""
    status = definition.status
    if status is None or status.observed_generation != definition.metadata.generation:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions)


async def reconcile_resource_definition(engine: Engine, name: str) -> None:
    definition = engine.catalog.resources.get(name)
    if definition is None:
        return
    problems = engine.catalog.resource_problems(name)
    crd_name = f"{definition.spec.names.plural}.{definition.spec.group}"
    if not problems:
        existing = await engine.kube.get_or_none(CRDS, crd_name)
        owner = ((existing or {}).get("metadata", {}).get("labels") or {}).get(DEFINITION_LABEL)
        if existing is not None and owner != name:
            problems.append(
                f"CRD {crd_name} exists and was not generated by this definition; "
                "Kattle does not take over CRDs it did not create"
            )
    if not problems:
        try:
            await engine.kube.patch(
                CRDS, crd_name, generated_crd(definition), patch_type="apply", force=True
            )
        except ApiError as error:
            problems.append(f"the API server refused the generated CRD {crd_name}: {error.message}")
    generated = await reconcile_standard_processes(engine, definition)
    if problems:
        await _write_status(
            engine,
            "ResourceDefinition",
            definition,
            ready=False,
            reason="Invalid",
            message="; ".join(problems),
            crd_name=None,
            also=generated,
        )
        return
    established = await _wait_established(engine, crd_name)
    if established:
        established = await _announce_when_discoverable(engine, definition, crd_name)
    await _write_status(
        engine,
        "ResourceDefinition",
        definition,
        ready=established,
        reason="Established" if established else "NotEstablished",
        message=(
            f"CRD {crd_name} is established; {definition.spec.names.kind} objects are orchestrated"
            if established
            else f"CRD {crd_name} was not established within {ESTABLISH_TIMEOUT_SECONDS:.0f}s"
        ),
        crd_name=crd_name,
        also=generated,
    )


async def refresh_statuses(engine: Engine) -> None:
    """Rewrites the status of every definition whose computed status changed."""
    catalog = engine.catalog
    for definition in list(catalog.resources.values()):
        # The Ready condition of a resource definition is set by its reconcile; here only
        # the derived lists (states, processes) are refreshed.
        current = definition.status
        if current is None or not current.conditions:
            continue
        await _write_status(
            engine,
            "ResourceDefinition",
            definition,
            keep_conditions=True,
            crd_name=current.crd_name,
            also=_relations_condition(catalog, definition),
        )
    for name, process in list(catalog.processes.items()):
        problems = catalog.process_problems(name)
        await _write_status(
            engine,
            "ProcessDefinition",
            process,
            ready=not problems,
            reason="Invalid" if problems else "Ready",
            message="; ".join(problems)
            if problems
            else f"{len(catalog.plan(name))} handler(s) attached",
        )
    for handler in list(catalog.handlers.values()):
        await _write_handler_status(engine, handler)


def _relations_condition(catalog: Catalog, definition: ResourceDefinition) -> list[Condition]:
    """`RelationsResolved`, for a type with relations: every related type is defined, with
    the same scope. Its processes that follow a broken relation report it too."""
    if not definition.spec.relations:
        return []
    problems = catalog.relation_problems(definition.metadata.name or "")
    if problems:
        return [("RelationsResolved", False, "UnknownType", "; ".join(problems))]
    names = ", ".join(r.name for r in definition.spec.relations)
    return [("RelationsResolved", True, "Resolved", f"relations {names} resolved")]


async def _write_handler_status(engine: Engine, handler: ProcessHandler) -> None:
    name = handler.metadata.name or ""
    unattached = engine.catalog.handler_problems(name)
    unreadable = await reference_problems(engine.webhooks.references, handler.spec)
    if unreadable:
        reason, message = "ReferenceUnavailable", "; ".join(unreadable + unattached)
    elif unattached:
        reason, message = "NoProcess", "; ".join(unattached)
    else:
        attached = engine.catalog.attached_to(name)
        reason, message = "Attached", f"called by {len(attached)} process(es)"
    await _write_status(
        engine,
        "ProcessHandler",
        handler,
        ready=reason == "Attached",
        reason=reason,
        message=message,
    )


async def reference_problems(references: ReferenceReader, spec: ProcessHandlerSpec) -> list[str]:
    """What the handler names that cannot be read now: its calls would fail on it.

    The reader caches what it read for a short while, so a refresh after every definition
    event costs no API read per handler.
    """
    wanted: list[tuple[str, ObjectKind, str, str, str]] = []
    for purpose, ref in (
        ("signing key", spec.signing_secret_ref),
        ("bearer token", spec.bearer_token_secret_ref),
    ):
        if ref is not None:
            wanted.append((purpose, "Secret", ref.namespace, ref.name, ref.key))
    ca = spec.client_config.ca_from
    if ca is not None:
        wanted.append(("CA certificates", ca.kind, ca.namespace, ca.name, ca.key))
    problems = []
    for purpose, kind, namespace, ref_name, key in wanted:
        try:
            await references.value(kind, namespace, ref_name, key)
        except ReferenceUnavailableError as error:
            problems.append(f"{purpose}: {error}")
    return problems


async def _write_status(
    engine: Engine,
    kind_name: str,
    definition: ResourceDefinition | ProcessDefinition | ProcessHandler,
    *,
    ready: bool = True,
    reason: str = "",
    message: str = "",
    crd_name: str | None = None,
    keep_conditions: bool = False,
    also: Sequence[Condition] = (),
) -> None:
    """Writes the definition's status, a compare-and-set on the body it was computed from:
    handlers of different definitions run at once, and a status built from an older body
    would put back conditions another one just wrote. On a conflict: read, compute again."""
    name = definition.metadata.name or ""
    for _ in range(STATUS_WRITE_ATTEMPTS):
        setting = [] if keep_conditions else [("Ready", ready, reason, message)]
        conditions = [*setting, *also]
        if await _try_write_status(
            engine, kind_name, definition, conditions, crd_name, keep_conditions
        ):
            return
        # A list of one, not a get: the operator's role lists definitions (and watches
        # them), and a read that only a lost race needs should not need a rule of its own.
        listed = await engine.kube.list(KINDS[kind_name], field_selector=f"metadata.name={name}")
        if not listed:
            return
        definition = MODELS[kind_name].model_validate(listed[0])
        engine.catalog.put(definition)
    logger.warning("gave up writing the status of %s %s: it kept changing", kind_name, name)


async def _try_write_status(
    engine: Engine,
    kind_name: str,
    definition: ResourceDefinition | ProcessDefinition | ProcessHandler,
    setting: Sequence[Condition],
    crd_name: str | None,
    derived_only: bool,
) -> bool:
    """False when the definition changed since `definition` was read, or is gone.
    `derived_only`: the lists derived from other definitions, not a verdict on this one's
    spec (so not its observedGeneration either)."""
    name = definition.metadata.name or ""
    before = definition.status.to_wire() if definition.status else {}
    conditions = before.get("conditions", [])
    for type_, value, why, text in setting:
        conditions = set_condition(
            conditions,
            type=type_,
            status=value,
            reason=why,
            message=text,
            generation=definition.metadata.generation,
        )
    status = {**_derived(engine.catalog, definition, crd_name), "conditions": conditions}
    if not derived_only:
        status["observedGeneration"] = definition.metadata.generation
    comparable = {**status, "conditions": without_times(conditions)}
    previous = {**before, "conditions": without_times(before.get("conditions", []))}
    if all(previous.get(k) == v for k, v in comparable.items() if v is not None):
        return True
    version = {"resourceVersion": definition.metadata.resource_version}
    updated = await engine.kube.patch(
        KINDS[kind_name],
        name,
        {"metadata": version, "status": status},
        subresource="status",
        missing_ok=True,
        conflict_ok=True,
    )
    if updated is None:
        # Changed since it was read, or gone: the caller reads it again (and stops if gone).
        return False
    engine.catalog.put(MODELS[kind_name].model_validate(updated))
    ready = next((v for t, v, _, _ in setting if t == "Ready"), True)
    if not ready:
        reason, message = next((r, m) for t, _, r, m in setting if t == "Ready")
        engine.events.post(updated, reason, message, type="Warning", action="Validate")
    return True


def _derived(
    catalog: Catalog,
    definition: ResourceDefinition | ProcessDefinition | ProcessHandler,
    crd_name: str | None,
) -> dict[str, Any]:
    name = definition.metadata.name or ""
    if isinstance(definition, ResourceDefinition):
        return {
            "crdName": crd_name,
            "states": catalog.states(name),
            "processes": [p.metadata.name for p in catalog.processes_of(name)],
        }
    if isinstance(definition, ProcessHandler):
        return {"processes": catalog.attached_to(name)}
    return {
        "handlers": [
            {"name": s.handler, "phase": s.phase, "priority": s.priority}
            for s in catalog.plan(name)
        ]
    }


async def _announce_when_discoverable(
    engine: Engine, definition: ResourceDefinition, crd_name: str
) -> bool:
    """Waits until API discovery lists the kind, then touches the CRD.

    Kopf rescans a group's resources when one of its CRDs changes, but discovery lags a
    little behind the Established condition: if the CRD's last event comes first, Kopf never
    sees the new kind. A change made once discovery lists it gives Kopf one more event.
    """
    spec = definition.spec
    deadline = asyncio.get_running_loop().time() + ESTABLISH_TIMEOUT_SECONDS
    while True:
        # Missing: discovery does not list the group's version yet.
        found = await engine.kube.request(
            "GET", f"/apis/{spec.group}/{spec.version}", missing_ok=True
        )
        if any(r.get("name") == spec.names.plural for r in (found or {}).get("resources", [])):
            break
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.2)
    crd = await engine.kube.get(CRDS, crd_name)
    marker = f"{crd['metadata']['uid']}/{crd['metadata'].get('generation')}"
    if (crd["metadata"].get("annotations") or {}).get(DISCOVERED_ANNOTATION) != marker:
        await engine.kube.patch(
            CRDS, crd_name, {"metadata": {"annotations": {DISCOVERED_ANNOTATION: marker}}}
        )
    return True


async def _wait_established(engine: Engine, crd_name: str) -> bool:
    deadline = asyncio.get_running_loop().time() + ESTABLISH_TIMEOUT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        crd = await engine.kube.get_or_none(CRDS, crd_name)
        for condition in ((crd or {}).get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Established" and condition.get("status") == "True":
                return True
        await asyncio.sleep(0.2)
    return False
