"""Every watch event passes here first: slimmed, and for Kattle's hot kinds, handled.

This is the one place Kattle reaches into Kopf's internals: Kopf has no hook between
parsing a watch event and queueing it, so its watch generator (`continuous_watch`, which
lists, then watches, for each watched kind) is wrapped.

- Slim: Kopf queues every parsed event for its object's worker with no back-pressure, so a
  burst of thousands of new objects sits in memory at once. `managedFields` (server-side
  apply's bookkeeping) is about two thirds of a Kattle object's JSON, and neither Kattle nor
  Kopf reads it: it is dropped as each event is read.
- Direct: for runs and orchestrated objects (four or five events a run, most of them echoes
  of the operator's own writes) Kopf's per-event machinery (a worker per object, its
  memories, loggers, kwargs, handler bookkeeping) cost about as much CPU as driving the run
  itself, for handlers that only note the event. Events of the kinds `route` names go to
  Kattle's handler right here, in order, and never reach Kopf's queues; Kopf still lists,
  watches, reconnects, scans for new kinds and pauses the stream when peering says so.

`install()` says whether the seam is still there; the wiring logs a warning when a Kopf
upgrade has moved it (a unit test fails too): the operator then works as before, every
event going through Kopf to the same handlers, with fatter queues and more CPU.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import ModuleType
from typing import Any

watching: ModuleType | None
try:
    from kopf._cogs.clients import watching
except ImportError:  # a Kopf that moved it: install() says so, the operator still runs
    watching = None

logger = logging.getLogger(__name__)

# Takes one raw event: its type (None for objects found by the initial listing) and object.
EventHandler = Callable[[str | None, dict[str, Any]], None]
# Given the kind a stream watches (Kopf's Resource), the handler that takes its events.
Router = Callable[[Any], EventHandler | None]

_MARK = "_kattle_seam"
_router: list[Router] = []  # the current router, if any: set by install()


def drop_managed_fields(event: object) -> None:
    """Strips the event's object in place: the body was just parsed and nobody else holds it."""
    if not isinstance(event, dict):
        return  # Kopf's own bookmarks
    obj = event.get("object")
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            meta.pop("managedFields", None)


def _handler_for(kwargs: dict[str, Any]) -> EventHandler | None:
    resource = kwargs.get("resource")
    return _router[0](resource) if _router and resource is not None else None


def _wrapped(
    original: Callable[..., AsyncGenerator[Any, None]],
) -> Callable[..., AsyncIterator[Any]]:
    @functools.wraps(original)
    async def continuous_watch(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        handler = _handler_for(kwargs)
        # Both the initial listing and the watch that follows come through here. Closing
        # this generator closes Kopf's at once (its response, its pause waiter), not at GC.
        async with contextlib.aclosing(original(*args, **kwargs)) as events:
            async for event in events:
                drop_managed_fields(event)
                if handler is None or not _takes(event):
                    yield event
                    continue
                try:
                    handler(event["type"], event["object"])
                except Exception:
                    # A bug in a handler must not end the watch of a whole kind.
                    logger.exception("handling a watch event of %s", kwargs.get("resource"))

    setattr(continuous_watch, _MARK, True)
    return continuous_watch


def _takes(event: object) -> bool:
    """Object events; bookmarks and errors stay Kopf's."""
    return (
        isinstance(event, dict)
        and event.get("type") in (None, "ADDED", "MODIFIED", "DELETED")
        and isinstance(event.get("object"), dict)
    )


def installed() -> bool:
    """Whether events of routed kinds are meant to arrive here, not through Kopf."""
    return (
        bool(_router)
        and watching is not None
        and bool(getattr(getattr(watching, "continuous_watch", None), _MARK, False))
    )


class Fallbacks:
    """Counts events of routed kinds that reached Kopf's handlers despite the seam.

    They still get handled (the Kopf handlers take them), but each one means a Kopf change
    routes some watch around `continuous_watch`: the operator keeps working with Kopf's
    per-event costs, so this says so once per kind and counts every such event.
    """

    def __init__(self, count: Callable[[str], None]) -> None:
        self._count = count
        self._warned: set[str] = set()

    def saw(self, kind: str) -> None:
        if not installed():
            return
        self._count(kind)
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning(
                "an event of %s reached Kopf's handler although the watch seam is installed: "
                "this Kopf routes some watches around it (runs still work, at Kopf's "
                "per-event cost); see kattle_watch_fallback_events_total",
                kind,
            )


def install(router: Router | None = None) -> bool:
    """Wraps Kopf's watch once and routes kinds with `router`; False when this Kopf has no
    such seam (events then all go through Kopf)."""
    if watching is None:
        return False
    original = getattr(watching, "continuous_watch", None)
    if original is None or not callable(original):
        return False
    if not getattr(original, _MARK, False):
        setattr(watching, "continuous_watch", _wrapped(original))  # noqa: B010
    _router[:] = [router] if router is not None else []
    return True
