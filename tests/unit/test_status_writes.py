"""The status writes built in `machine/status.py`, table-driven: keyed by the model's
field names, so what the API server sees is spelled in one place."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.api.resourcedefinition import ResourceDefinition
from kattle.machine import status


def _resource(**spec: Any) -> ResourceDefinition:
    return ResourceDefinition.model_validate(
        {
            "metadata": {"name": "volume"},
            "spec": {"names": {"kind": "Volume", "plural": "volumes"}, **spec},
        }
    )


@pytest.mark.parametrize(
    ("spec", "writes"),
    [
        ({}, {"state": "requested", "transitioning": "no"}),
        ({"initialState": "inactive"}, {"state": "inactive", "transitioning": "no"}),
        (
            {"initialState": "inactive", "initialStates": {"allocationState": "free"}},
            {"allocationState": "free", "state": "inactive", "transitioning": "no"},
        ),
    ],
)
def test_a_new_object_without_a_create_process_starts_free_in_its_initial_states(
    spec: dict[str, Any], writes: dict[str, Any]
) -> None:
    definition = _resource(**spec).spec
    built = status.initial(state=definition.initial_state, further=definition.initial_states)
    assert built == writes


def test_the_initial_write_is_keyed_by_the_models_names() -> None:
    built = status.initial(state="s", further={})
    assert set(built) <= set(status.WIRE.values())
