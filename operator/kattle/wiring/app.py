"""The Kopf wiring: which watches the operator keeps, and who each event goes to.

Only raw watch handlers (`on.event`) are used: Kopf keeps the watches, reconnects, scans
for new kinds and (with peering) elects the active replica, while Kattle keeps its own state
on the objects themselves. So Kopf writes no progress annotations, diff-bases or finalizers
of its own: every write the operator makes is one the run needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from kattle.api.common import GROUP, VERSION
from kattle.api.generated import GENERATED_CATEGORY
from kattle.controllers import definitions
from kattle.controllers.diagrams import DiagramKeeper
from kattle.controllers.objects import ObjectController
from kattle.kube.client import Credentials, KubeClient
from kattle.kube.events import EventRecorder
from kattle.machine.catalog import Catalog
from kattle.observability.metrics import Metrics
from kattle.observability.server import HealthServer
from kattle.runner.cache import ObjectCache
from kattle.runner.engine import CatalogRefresher, EndedRuns, Engine
from kattle.runner.namespaces import NamespaceLabels
from kattle.runner.scheduler import Scheduler, object_key_of_run
from kattle.runner.slots import DEFAULT_ACTIVE_RUNS, RunSlots
from kattle.runner.watch import RunWatch
from kattle.webhooks.client import WebhookClient
from kattle.wiring import watch_seam
from kattle.wiring.no_diffbase import NoDiffBaseStorage
from kattle.wiring.own_crds import apply_own_crds

logger = logging.getLogger("kattle")
WORKER_LIMIT = 256
WORKER_IDLE_SECONDS = 0.2
LIST_CHUNK_SIZE = 500


@dataclass
class OperatorOptions:
    """What `kattle operator` was told on its command line."""

    runs_namespace: str = "default"
    max_active_runs: int = DEFAULT_ACTIVE_RUNS
    run_events: bool = True
    http_address: str | None = None  # HOST:PORT of /metrics, /healthz and /readyz
    service_overrides: dict[str, str] = field(default_factory=dict)
    # With peering: seconds without a keepalive before the others take a replica for dead.
    peering_lifetime: int = 30
    check_idempotency: bool = False
    manage_crds: bool = False  # apply Kattle's own CRDs at start-up (wiring/own_crds.py)


def peering_priority(started: float) -> int:
    """Higher for replicas started earlier; distinct to the microsecond."""
    return -int(started * 1_000_000)


@dataclass
class Runtime:
    """Everything the handlers share, made at startup and closed at cleanup."""

    engine: Engine
    scheduler: Scheduler
    objects: ObjectController
    health: HealthServer | None
    diagrams: DiagramKeeper
    fallbacks: watch_seam.Fallbacks


def configure(settings: kopf.OperatorSettings, options: OperatorOptions) -> None:
    """Kopf's settings: how it watches, queues and peers."""
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # A watch the API server drops under a burst resumes from its resourceVersion; when
    # that is too old (410 Gone) Kopf lists the kind again. Unchunked, a list of 10,000
    # objects is one response held three times over while it is read and parsed.
    settings.watching.chunk_size = LIST_CHUNK_SIZE
    settings.persistence.diffbase_storage = NoDiffBaseStorage()
    # Kopf gives each object with pending events a worker; a burst of thousands of new
    # objects would otherwise mean thousands of workers at once, each holding a body.
    # A worker lingers idle for more events of its object: briefly, or the limit would
    # cap throughput at WORKER_LIMIT / idle_timeout objects a second.
    settings.queueing.worker_limit = WORKER_LIMIT
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    # Kopf pauses every replica that sees a peer of higher or equal priority: identical
    # replicas would all pause. The oldest replica is the active one and a new one
    # (a rollout, a restart) waits as a standby rather than taking over mid-run.
    settings.peering.priority = peering_priority(time.time())
    settings.peering.lifetime = options.peering_lifetime


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
    return info or kopf.login_with_kubeconfig(**kwargs)


async def build_runtime(info: kopf.ConnectionInfo, options: OperatorOptions) -> Runtime:
    """Every collaborator, each made once and passed to those that use it."""
    kube = KubeClient(Credentials.from_connection_info(info))
    if options.manage_crds:
        await apply_own_crds(kube)
    metrics = Metrics()
    events = EventRecorder(kube, normal=options.run_events, on_drop=metrics.events_dropped.inc)
    metrics.watch_events(lambda: events.queued)
    catalog = Catalog()
    engine = Engine(
        kube=kube,
        webhooks=WebhookClient(service_overrides=options.service_overrides, kube=kube),
        catalog=catalog,
        events=events,
        objects=ObjectCache(),
        metrics=metrics,
        slots=RunSlots(options.max_active_runs),
        ended=EndedRuns(),
        watch=RunWatch(),
        namespaces=NamespaceLabels(),
        refresher=CatalogRefresher(definitions.load_all),
        check_idempotency=options.check_idempotency,
    )
    await definitions.load_all(engine)
    metrics.watch_catalog(
        lambda: {
            "ResourceDefinition": len(catalog.resources),
            "ProcessDefinition": len(catalog.processes),
            "ProcessHandler": len(catalog.handlers),
        }
    )
    health = None
    if options.http_address:
        health = HealthServer(metrics)
        await health.start(options.http_address)
        health.ready.set()
    diagrams = DiagramKeeper(engine)
    diagrams.changed()
    scheduler = Scheduler(engine)
    objects = ObjectController(engine, runs_namespace=options.runs_namespace, scheduler=scheduler)
    fallbacks = watch_seam.Fallbacks(lambda kind: metrics.watch_fallback_events.labels(kind).inc())
    return Runtime(engine, scheduler, objects, health, diagrams, fallbacks)


async def close_runtime(current: Runtime) -> None:
    await current.scheduler.stop()
    await current.objects.stop()
    await current.diagrams.stop()
    if current.health is not None:
        await current.health.stop()
    await current.engine.events.flush()
    await current.engine.webhooks.close()
    await current.engine.kube.close()


def build_registry(
    options: OperatorOptions,
) -> tuple[kopf.OperatorRegistry, watch_seam.Router]:
    """Kopf's handlers, and the router that sends hot kinds' events past Kopf's queues."""
    registry = kopf.OperatorRegistry()
    state: dict[str, Runtime] = {}

    @kopf.on.login(registry=registry)
    def on_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return login(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        configure(settings, options)
        info = login(settings=settings, **kwargs)
        if info is None:
            raise kopf.PermanentError("no kubeconfig and no in-cluster service account found")
        current = state["runtime"] = await build_runtime(info, options)
        catalog = current.engine.catalog
        logger.info(
            "kattle operator started: %d resource types, %d processes, %d handlers",
            len(catalog.resources),
            len(catalog.processes),
            len(catalog.handlers),
        )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        if "runtime" in state:
            await close_runtime(state["runtime"])

    return registry, register_handlers(registry, lambda: state["runtime"])


def register_handlers(
    registry: kopf.OperatorRegistry, runtime: Callable[[], Runtime]
) -> watch_seam.Router:
    """The watch handlers: definitions through Kopf, runs and objects past its queues."""

    def definition_handler(kind_name: str, plural: str) -> None:
        @kopf.on.event(GROUP, VERSION, plural, registry=registry, id=f"{plural}-event")
        async def on_definition(body: Mapping[str, Any], type: str | None, **_: Any) -> None:
            current = runtime()
            await definitions.on_definition_event(current.engine, kind_name, body, type)
            current.diagrams.changed()

    definition_handler("ResourceDefinition", "resourcedefinitions")
    definition_handler("ProcessDefinition", "processdefinitions")
    definition_handler("ProcessHandler", "processhandlers")

    # Runs and orchestrated objects: their events come straight from the watch (see
    # watch_seam.py); these Kopf handlers keep Kopf watching the kinds, and take the events
    # themselves only if a Kopf upgrade moved the seam. The raw object is a plain dict the
    # operator may keep (Kopf's `body` is a live view): no copies are made.
    def run_event(type: str | None, raw: dict[str, Any]) -> None:
        scheduler = runtime().scheduler
        if type == "DELETED":
            scheduler.forget(raw, deleted=True)
            scheduler.wake(object_key_of_run(raw))
        else:
            scheduler.submit(raw)

    def object_event(type: str | None, raw: dict[str, Any]) -> None:
        current = runtime()
        definition = current.objects.definition_of(raw)
        if definition is None:
            return
        current.objects.remember(raw, definition, deleted=type == "DELETED")
        current.scheduler.wake(current.objects.key_of(raw, definition))
        current.objects.offer(raw, type, definition)

    @kopf.on.event(GROUP, VERSION, "processinstances", registry=registry, id="runs")
    async def on_run(event: Mapping[str, Any], type: str | None, **_: Any) -> None:
        runtime().fallbacks.saw("processinstances")
        run_event(type, event["object"])

    @kopf.on.event(category=GENERATED_CATEGORY, registry=registry, id="objects")
    async def on_object(event: Mapping[str, Any], type: str | None, **_: Any) -> None:
        runtime().fallbacks.saw("objects")
        object_event(type, event["object"])

    def route(resource: Any) -> watch_seam.EventHandler | None:
        if resource.group == GROUP and resource.plural == "processinstances":
            return run_event
        if GENERATED_CATEGORY in (resource.categories or ()):
            return object_event
        return None

    return route


async def run_operator(
    options: OperatorOptions,
    *,
    namespaces: list[str],
    peering: str | None,
    liveness: str | None,
    stop_flag: asyncio.Event | None = None,
) -> None:
    registry, route = build_registry(options)
    if not watch_seam.install(route):
        logger.warning(
            "this Kopf version has no continuous_watch to wrap: every watch event goes through "
            "Kopf's queues, and objects keep their managedFields in memory (Kattle works, with "
            "more memory and CPU under load)"
        )
    await kopf.operator(
        registry=registry,
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=peering is None,
        peering_name=peering,
        liveness_endpoint=liveness,
        stop_flag=stop_flag,
    )
