"""The SDK's idempotency check, for handler authors' tests: it catches a handler that answers
the same event two ways, and passes every handler of the shipped Python sample."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
from types import ModuleType

import pytest

from kattle.sdk import HandlerApp, ProcessEvent, ProcessReply
from kattle.sdk.testing import assert_idempotent, event
from tests.support.paths import SAMPLES


def test_a_handler_that_counts_its_calls_is_caught() -> None:
    app = HandlerApp()
    calls = itertools.count(1)

    @app.on("instance.create")
    async def allocate(_: ProcessEvent) -> ProcessReply:
        ip = f"10.0.0.{next(calls)}"  # a fresh address per call: two for one object
        return ProcessReply(data={"ip": ip}, status={"ip": ip}, message="allocated")

    with pytest.raises(AssertionError) as caught:
        asyncio.run(assert_idempotent(app, event("instance.create", name="web-1")))
    assert str(caught.value) == (
        "handler test is not idempotent: two calls with idempotency key "
        "00000000-0000-4000-8000-000000000001/0/test gave different replies "
        '(data.ip: "10.0.0.1" != "10.0.0.2"; status.ip: "10.0.0.1" != "10.0.0.2")'
    )


def _sample_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "sample_handlers", SAMPLES / "handlers" / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "sent",
    [
        event("instance.start", phase="pre", spec={"image": "nginx:1.27"}),
        event("instance.start", phase="pre", spec={"image": "forbidden/x"}),
        event("instance.create"),
        event("volume.activate", spec={"sizeGb": 10}),
        event("volume.activate", spec={"sizeGb": 5000}),
        event("ipaddress.associate", data={"instance": "web-1"}),
        event("volume.create", phase="post"),
    ],
    ids=lambda e: f"{e.process}-{e.phase}",
)
def test_the_shipped_python_sample_is_idempotent(sent: ProcessEvent) -> None:
    app: HandlerApp = _sample_app().app
    reply = asyncio.run(assert_idempotent(app, sent))
    assert "no handler" not in (reply.error or "")


def test_the_sdk_prints_a_process_handler_for_each_registration() -> None:
    import yaml

    from kattle.api.processhandler import ProcessHandler
    from kattle.sdk.manifests import handler_manifests

    app: HandlerApp = _sample_app().app
    text = handler_manifests(
        app,
        service="kattle-system/kattle-sample-handlers:8080",
        prefix="sample",
        signing_secret="kattle-system/kattle-sample-handlers-signing",
    )
    handlers = [ProcessHandler.model_validate(doc) for doc in yaml.safe_load_all(text)]
    assert [(h.metadata.name, h.spec.processes, h.spec.phase) for h in handlers] == [
        (f"sample-{fn.__name__.replace('_', '-')}", [selector], phase or "handler")
        for selector, phase, fn in app.registrations()
    ]
    service = handlers[0].spec.client_config.service
    assert service is not None
    assert (service.namespace, service.name, service.port) == (
        "kattle-system",
        "kattle-sample-handlers",
        8080,
    )
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        handler_manifests(app, service="no-namespace", prefix="x")
