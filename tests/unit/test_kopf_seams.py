"""What Kattle sets in Kopf to save memory and CPU: kattle/wiring/watch_seam.py and
no_diffbase.py."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import kopf
from kopf._cogs.clients import watching

from kattle.wiring import watch_seam
from kattle.wiring.no_diffbase import NoDiffBaseStorage


def _event(name: str, **meta: Any) -> dict[str, Any]:
    return {"type": "ADDED", "object": {"metadata": {"name": name, **meta}, "spec": {"a": 1}}}


def test_this_kopf_still_has_the_seam_and_it_is_wrapped_once() -> None:
    # Routing reads the kind a stream is for from this keyword argument.
    assert "resource" in inspect.signature(watching.continuous_watch).parameters
    assert watch_seam.install()
    wrapped = watching.continuous_watch
    assert watch_seam.install()
    assert watching.continuous_watch is wrapped, "installing twice wrapped twice"


def test_events_lose_managed_fields_and_keep_everything_else() -> None:
    bookmark = object()
    events = [
        _event("a", managedFields=[{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]),
        _event("b", labels={"x": "y"}),
        bookmark,
        {"type": "ERROR", "object": {"code": 410}},
    ]

    async def original(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        assert args == (1,)
        assert kwargs == {"resource": "r"}
        for event in events:
            yield event

    async def collect() -> list[Any]:
        return [e async for e in watch_seam._wrapped(original)(1, resource="r")]

    seen = asyncio.run(collect())
    assert seen[0] == {"type": "ADDED", "object": {"metadata": {"name": "a"}, "spec": {"a": 1}}}
    assert seen[1] == _event("b", labels={"x": "y"})
    assert seen[2] is bookmark
    assert seen[3] == {"type": "ERROR", "object": {"code": 410}}


def test_routed_kinds_go_to_their_handler_in_order_and_the_rest_to_kopf() -> None:
    bookmark = object()
    events = [
        {"type": None, "object": {"metadata": {"name": "listed"}}},
        bookmark,
        _event("a", managedFields=[{"manager": "m"}]),
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
        {"type": "MODIFIED", "object": {"metadata": {"name": "boom"}}},
        {"type": "DELETED", "object": {"metadata": {"name": "a"}}},
        {"type": "ERROR", "object": {"code": 410}},
    ]
    taken: list[tuple[str | None, str]] = []

    def hot(event_type: str | None, raw: dict[str, Any]) -> None:
        if raw["metadata"]["name"] == "boom":
            raise RuntimeError("a bug in a handler")
        taken.append((event_type, raw["metadata"]["name"]))
        assert "managedFields" not in raw["metadata"]

    async def original(**kwargs: Any) -> AsyncIterator[Any]:
        for event in events:
            yield event

    async def collect(resource: str) -> list[Any]:
        return [e async for e in watch_seam._wrapped(original)(resource=resource)]

    assert watch_seam.install(lambda resource: hot if resource == "hot" else None)
    try:
        to_kopf = asyncio.run(collect("hot"))
        # The handler's failure on "boom" is logged; the stream goes on.
        assert taken == [(None, "listed"), ("ADDED", "a"), ("DELETED", "a")]
        assert to_kopf == [events[1], events[3], events[6]]
        taken.clear()
        assert len(asyncio.run(collect("cold"))) == len(events)
        assert taken == []
    finally:
        watch_seam.install()


def test_the_diff_base_storage_keeps_and_writes_nothing() -> None:
    storage = NoDiffBaseStorage()
    body = kopf.Body({"metadata": {"name": "a", "annotations": {"x": "y"}}, "spec": {"a": 1}})
    patch = kopf.Patch()
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    storage.store(body=body, patch=patch, essence=kopf.BodyEssence({"spec": {"a": 1}}))
    assert not patch
