"""Label selectors as Kubernetes evaluates them, and which handlers serve an object."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.api.processhandler import LabelSelector, ProcessHandlerSpec
from kattle.machine.selectors import applies, matches

LABELS = {"tier": "gold", "team": "a"}


@pytest.mark.parametrize(
    ("selector", "matched"),
    [
        (None, True),
        ({}, True),
        ({"matchLabels": {"tier": "gold"}}, True),
        ({"matchLabels": {"tier": "silver"}}, False),
        ({"matchLabels": {"zone": "x"}}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold", "x"]}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["gold"]}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["x"]}]}, True),
        ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, True),
        (
            {
                "matchLabels": {"team": "a"},
                "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}],
            },
            False,
        ),
    ],
)
def test_label_selectors(selector: dict[str, Any] | None, matched: bool) -> None:
    parsed = None if selector is None else LabelSelector.model_validate(selector)
    assert matches(parsed, LABELS) is matched


def _spec(**selectors: Any) -> ProcessHandlerSpec:
    return ProcessHandlerSpec.model_validate(
        {"processes": ["x.go"], "clientConfig": {"url": "https://h.example/"}, **selectors}
    )


def test_a_cluster_scoped_object_matches_every_namespace_selector() -> None:
    team_b = _spec(namespaceSelector={"matchLabels": {"team": "b"}})
    assert applies(team_b, {}, None)
    assert not applies(team_b, {}, {"team": "a"})
    assert applies(team_b, {}, {"team": "b"})
    gold = _spec(objectSelector={"matchLabels": {"tier": "gold"}})
    assert applies(gold, LABELS, None)
    assert not applies(gold, {}, {"team": "b"})
