"""The idempotency check on plain data: which differences fail a step, and how they read."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.machine.idempotency import differences, verdict


@pytest.mark.parametrize(
    ("first", "second", "found"),
    [
        ({}, {}, []),
        ({"data": {"ip": "10.0.0.7"}}, {"data": {"ip": "10.0.0.7"}}, []),
        (
            {"data": {"ip": "10.0.0.7"}},
            {"data": {"ip": "10.0.0.8"}},
            ['data.ip: "10.0.0.7" != "10.0.0.8"'],
        ),
        ({"message": "call 1"}, {"message": "call 2"}, []),  # a note for the log only
        ({"data": {"message": 1}}, {"data": {"message": 2}}, ["data.message: 1 != 2"]),
        ({"status": {"ip": "a"}}, {}, ['status: {"ip": "a"} != null']),
        ({"chain": "x.start"}, {"chain": None}, ['chain: "x.start" != null']),
        ({"error": "busy"}, {}, ['error: "busy" != null']),
    ],
)
def test_differences(first: dict[str, Any], second: dict[str, Any], found: list[str]) -> None:
    assert differences(first, second) == found


def test_the_verdict_names_the_handler_the_key_and_the_first_differences() -> None:
    assert verdict("h", "k", {"data": {"a": 1}}, {"data": {"a": 1}}) is None
    many = {"data": {str(i): i for i in range(8)}}
    message = verdict("ipam", "uid/0/ipam", many, {"data": {}})
    assert message is not None
    assert message.startswith(
        "handler ipam is not idempotent: two calls with idempotency key uid/0/ipam gave "
        "different replies (data.0: 0 != null;"
    )
    assert message.endswith("; and 3 more)")
