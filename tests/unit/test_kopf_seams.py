"""What Kattle sets in Kopf to save memory and CPU: kattle/wiring/watch_seam.py and
no_diffbase.py."""

from __future__ import annotations

import asyncio
import inspect
import logging
import tomllib
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import watching
from packaging.requirements import Requirement

from kattle.wiring import kopf_version, watch_seam
from kattle.wiring.no_diffbase import NoDiffBaseStorage
from tests.support.paths import REPO


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


def test_fallback_events_are_counted_and_warned_once_only_while_the_seam_is_installed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted: list[str] = []
    fallbacks = watch_seam.Fallbacks(counted.append)
    watch_seam.install()  # no router: nothing is meant to bypass Kopf
    fallbacks.saw("processinstances")
    assert counted == []
    assert watch_seam.install(lambda resource: None)
    try:
        with caplog.at_level(logging.WARNING, logger=watch_seam.__name__):
            for kind in ("processinstances", "processinstances", "objects"):
                fallbacks.saw(kind)
        assert counted == ["processinstances", "processinstances", "objects"]
        warned = [r.getMessage() for r in caplog.records]
        assert len(warned) == 2, warned
        assert "an event of processinstances reached Kopf's handler" in warned[0]
    finally:
        watch_seam.install()


@pytest.mark.parametrize(
    ("installed", "problem"),
    [
        ("1.45.2", None),
        ("1.45.9", None),
        ("1.45.10rc1", None),
        ("1.45.1", "Kopf 1.45.1 is installed, but Kattle is tested with kopf>=1.45.2,<1.46.0"),
        ("1.37.0", "Kopf 1.37.0 is installed"),
        ("1.46", "Kopf 1.46 is installed"),
        ("2.0.0", "Kopf 2.0.0 is installed"),
        ("nightly", "Kopf nightly is installed"),
        (None, "Kopf is not installed; Kattle needs kopf>=1.45.2,<1.46.0"),
    ],
)
def test_the_operator_refuses_a_kopf_outside_the_tested_range(
    installed: str | None, problem: str | None
) -> None:
    found = kopf_version.untested(installed)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem), found


def test_the_tested_range_is_what_pyproject_asks_for_and_what_is_installed() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (kopf_requirement,) = [r for r in map(Requirement, project["dependencies"]) if r.name == "kopf"]
    low, high = (kopf_version.TESTED_FROM, kopf_version.TESTED_BELOW)
    assert {str(s) for s in kopf_requirement.specifier} == {
        f">={'.'.join(map(str, low))}",
        f"<{high[0]}.{high[1]}",
    }
    assert kopf_version.untested(kopf_version.installed_kopf()) is None
