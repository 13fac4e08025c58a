"""Watched objects arrive slim: `managedFields` is dropped from each as it is read.

Kopf reads every watch event into memory as it arrives and queues it for its object's
worker, with no back-pressure: a burst of thousands of new objects and runs sits in those
queues at once, each a parsed body. `managedFields` (server-side apply's bookkeeping) is
about two thirds of a Kattle object's JSON, and neither Kattle nor Kopf reads it. Kopf has
no hook between parsing an event and queueing it, so its watch generator is wrapped here:
the one place Kattle reaches into Kopf's internals. `install()` says whether the seam is
still there, and the wiring logs a warning when a Kopf upgrade has moved it (a unit test
fails too): the operator then works as before, with fatter queues.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import ModuleType
from typing import Any

watching: ModuleType | None
try:
    from kopf._cogs.clients import watching
except ImportError:  # a Kopf that moved it: install() says so, the operator still runs
    watching = None

_MARK = "_kattle_slim"


def drop_managed_fields(event: object) -> None:
    """Strips the event's object in place: the body was just parsed and nobody else holds it."""
    if not isinstance(event, dict):
        return  # Kopf's own bookmarks
    obj = event.get("object")
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            meta.pop("managedFields", None)


def _slimmed(
    original: Callable[..., AsyncGenerator[Any, None]],
) -> Callable[..., AsyncIterator[Any]]:
    async def continuous_watch(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        # Both the initial listing and the watch that follows come through here. Closing
        # this generator closes Kopf's at once (its response, its pause waiter), not at GC.
        async with contextlib.aclosing(original(*args, **kwargs)) as events:
            async for event in events:
                drop_managed_fields(event)
                yield event

    setattr(continuous_watch, _MARK, True)
    return continuous_watch


def install() -> bool:
    """Wraps Kopf's watch once; False when this Kopf has no such seam."""
    if watching is None:
        return False
    original = getattr(watching, "continuous_watch", None)
    if original is None or not callable(original):
        return False
    if not getattr(original, _MARK, False):
        setattr(watching, "continuous_watch", _slimmed(original))  # noqa: B010
    return True
