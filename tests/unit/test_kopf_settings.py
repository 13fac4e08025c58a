"""What Kattle sets in Kopf to save memory and CPU: kattle/wiring/slim_watch.py and
no_diffbase.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf
from kopf._cogs.clients import watching

from kattle.wiring import slim_watch
from kattle.wiring.no_diffbase import NoDiffBaseStorage


def _event(name: str, **meta: Any) -> dict[str, Any]:
    return {"type": "ADDED", "object": {"metadata": {"name": name, **meta}, "spec": {"a": 1}}}


def test_this_kopf_still_has_the_seam_and_it_is_wrapped_once() -> None:
    assert slim_watch.install()
    wrapped = watching.continuous_watch
    assert slim_watch.install()
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
        return [e async for e in slim_watch._slimmed(original)(1, resource="r")]

    seen = asyncio.run(collect())
    assert seen[0] == {"type": "ADDED", "object": {"metadata": {"name": "a"}, "spec": {"a": 1}}}
    assert seen[1] == _event("b", labels={"x": "y"})
    assert seen[2] is bookmark
    assert seen[3] == {"type": "ERROR", "object": {"code": 410}}


def test_the_diff_base_storage_keeps_and_writes_nothing() -> None:
    storage = NoDiffBaseStorage()
    body = kopf.Body({"metadata": {"name": "a", "annotations": {"x": "y"}}, "spec": {"a": 1}})
    patch = kopf.Patch()
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    storage.store(body=body, patch=patch, essence=kopf.BodyEssence({"spec": {"a": 1}}))
    assert not patch
