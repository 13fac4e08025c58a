"""Tracing with OpenTelemetry's in-process exporter: a handler call is a span, child of the
run's, and the handler receives a W3C traceparent naming that span."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kattle.api.processhandler import ProcessHandlerSpec
from kattle.observability import tracing
from kattle.sdk.testing import event
from kattle.webhooks.client import WebhookClient
from tests.support.handlers import HandlerServer, Reply

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    # The global provider can be set once per process: this module is the one that does.
    configured = TracerProvider()
    configured.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(configured)
    tracing.enable()


def test_a_handler_call_is_a_span_inside_the_run_and_carries_its_traceparent() -> None:
    server = HandlerServer()
    server.script("/h", Reply({"message": "ok"}))
    spec = ProcessHandlerSpec.model_validate(
        {
            "processes": ["instance.create"],
            "clientConfig": {"url": server.url("/h"), "allowInsecureHTTP": True},
        }
    )

    async def call() -> None:
        client = WebhookClient()
        try:
            with tracing.span("run instance.create", {"kattle.run": "default/web-1.create-x"}):
                reply = await client.call("ipam", spec, event("instance.create"))
            assert reply.message == "ok"
        finally:
            await client.close()

    try:
        asyncio.run(call())
    finally:
        server.close()
    spans = {s.name: s for s in EXPORTER.get_finished_spans()}
    run, handler = spans["run instance.create"], spans["handler ipam"]
    assert handler.parent is not None
    assert handler.parent.span_id == run.context.span_id
    assert handler.attributes is not None
    assert handler.attributes["kattle.idempotency_key"].endswith("/0/test")
    (received,) = server.calls("/h")
    version, trace_id, span_id, _ = received.headers["traceparent"].split("-")
    assert (version, int(trace_id, 16), int(span_id, 16)) == (
        "00",
        handler.context.trace_id,
        handler.context.span_id,
    )


def test_nothing_is_configured_without_the_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    assert tracing.configure_from_environment() is False


def test_while_tracing_is_off_a_span_is_skipped_and_no_traceparent_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing, "_tracer", None)  # as before `enable`, even with a provider set
    headers: dict[str, str] = {}
    with tracing.span("run x", {"kattle.run": "ns/x"}) as current:
        tracing.inject(headers)
    assert current is None
    assert headers == {}
