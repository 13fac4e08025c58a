"""Every sample parses into the API models and serialises back to what it says."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kattle.api import ProcessDefinition, ProcessHandler, ResourceDefinition
from kattle.api.common import KattleResource
from tests.support.paths import SAMPLES

MODELS: dict[str, type[KattleResource]] = {
    "ResourceDefinition": ResourceDefinition,
    "ProcessDefinition": ProcessDefinition,
    "ProcessHandler": ProcessHandler,
}


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def _assert_contains(whole: Any, part: Any, path: str = "") -> None:
    """Everything the sample says is in the model's output (which adds defaults)."""
    if isinstance(part, dict):
        assert isinstance(whole, dict), path
        for key, value in part.items():
            assert key in whole, f"{path}.{key} lost"
            _assert_contains(whole[key], value, f"{path}.{key}")
    elif isinstance(part, list) and isinstance(whole, list) and len(whole) == len(part):
        for index, (got, want) in enumerate(zip(whole, part, strict=True)):
            _assert_contains(got, want, f"{path}[{index}]")
    else:
        assert whole == part, f"{path}: {whole!r} != {part!r}"


@pytest.mark.parametrize("doc", _documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_sample_round_trips(doc: dict[str, Any]) -> None:
    model = MODELS[doc["kind"]]
    parsed = model.model_validate(doc)
    wire = parsed.to_wire()
    _assert_contains(wire, doc)
    assert model.model_validate(wire) == parsed


def test_instance_lifecycle_is_cattles() -> None:
    """Cattle's standard instance lifecycle, process by process."""
    processes = {
        d["metadata"]["name"]: ProcessDefinition.model_validate(d).spec
        for d in _documents()
        if d["kind"] == "ProcessDefinition"
    }
    table = {
        "instance.create": ({"requested"}, "creating", "stopped"),
        "instance.start": ({"stopped", "creating"}, "starting", "running"),
        "instance.stop": ({"creating", "running", "starting", "restarting"}, "stopping", "stopped"),
        "instance.restart": ({"running"}, "restarting", "running"),
        "instance.error": ({"creating", "stopped"}, "erroring", "error"),
        "instance.remove": (
            {"requested", "creating", "stopped", "erroring", "error"},
            "removing",
            "removed",
        ),
        "instance.purge": ({"removed"}, "purging", "purged"),
        "ipaddress.associate": ({"active"}, "associating", "associated"),
    }
    for name, (start, transitioning, done) in table.items():
        spec = processes[name]
        assert (set(spec.start), spec.transitioning, spec.done) == (start, transitioning, done)
    assert processes["instance.create"].trigger == "create"
    assert processes["instance.remove"].trigger == "delete"
    assert processes["instance.purge"].trigger == "delete"
    assert processes["instance.start"].trigger == "manual"


def test_models_use_python_names_and_wire_names() -> None:
    handler = ProcessHandler.model_validate(
        {
            "metadata": {"name": "h"},
            "spec": {
                "processes": ["*.create"],
                "clientConfig": {"url": "http://127.0.0.1:1/", "allowInsecureHTTP": True},
            },
        }
    )
    assert handler.spec.client_config.allow_insecure_http is True
    assert handler.spec.priority == 1000
    wire = handler.to_wire()
    assert wire["spec"]["clientConfig"]["allowInsecureHTTP"] is True
    assert wire["apiVersion"] == "kattle.dev/v1alpha1"
    assert wire["kind"] == "ProcessHandler"
