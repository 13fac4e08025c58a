"""The object cache keeps the newest body seen of each object, by resourceVersion."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.kube.client import Kind
from kattle.runner.cache import ObjectCache

KIND = Kind("resources.kattle.dev", "v1", "things", namespaced=True)


def body(version: str, state: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "a",
            "namespace": "ns",
            "resourceVersion": version,
            "managedFields": [{"manager": "kattle"}],
        },
        "status": {"state": state},
    }


@pytest.mark.parametrize(
    ("first", "then", "kept"),
    [
        (body("5", "old"), body("6", "new"), "new"),  # newer: replaces
        (body("6", "new"), body("5", "old"), "new"),  # older (a late watch event): ignored
        (body("5", "ours"), body("5", "echo"), "ours"),  # the same version: kept as it was
        (body("x", "opaque"), body("5", "next"), "next"),  # not a number: any newer body wins
    ],
)
def test_the_newest_body_is_kept(first: dict[str, Any], then: dict[str, Any], kept: str) -> None:
    cache = ObjectCache()
    cache.put(KIND, first)
    cache.put(KIND, then)
    got = cache.get(KIND, "a", "ns")
    assert got is not None
    assert got["status"]["state"] == kept
    assert "managedFields" not in got["metadata"], "the cache keeps no managedFields"


def test_a_dropped_object_is_gone() -> None:
    cache = ObjectCache()
    cache.put(KIND, body("5", "x"))
    cache.drop(KIND, "a", "ns")
    assert cache.get(KIND, "a", "ns") is None
    assert len(cache) == 0
