"""OpenTelemetry tracing, when it is installed and configured: a span for each run's drive
and each handler call, and a W3C `traceparent` on every call so a handler's own spans join
the run's trace.

Optional: `pip install 'kattle[otel]'` (the image has it). The exporter is configured the
standard way, by the `OTEL_*` environment variables: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_TRACES_EXPORTER=otlp`) spans go over OTLP/HTTP; `OTEL_SERVICE_NAME` names the
service (default `kattle-operator`). Without the package or the variables, every function
here does nothing, at no cost.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

try:
    from opentelemetry import propagate, trace
except ImportError:  # the optional dependency is not installed
    propagate = None  # type: ignore[assignment]
    trace = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)
TRACER = "kattle"
# Set once a tracer provider is configured (`enable`): until then a span is skipped outright,
# since even OpenTelemetry's no-op path costs a run a noticeable share of its CPU.
_tracer: Any = None


def enable() -> None:
    """Spans from now on, through the tracer provider set in OpenTelemetry (its proxy
    follows a provider set later too)."""
    global _tracer
    if trace is not None:
        _tracer = trace.get_tracer(TRACER)


def configure_from_environment() -> bool:
    """Sets up an OTLP exporter when the OTEL_* variables ask for one; whether it did."""
    if trace is None:
        return False
    wanted = os.environ.get("OTEL_TRACES_EXPORTER", "")
    if "OTEL_EXPORTER_OTLP_ENDPOINT" not in os.environ and wanted != "otlp":
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning("OTEL_* asks for traces, but the OpenTelemetry SDK is not installed")
        return False
    name = os.environ.get("OTEL_SERVICE_NAME", "kattle-operator")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    enable()
    logger.info("tracing to %s", os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "the default"))
    return True


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
    """A span named `name`, current inside the block (None while tracing is off)."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, attributes=dict(attributes)) as s:
        yield s


def set_attributes(current: Any, attributes: Mapping[str, Any]) -> None:
    if current is not None:
        current.set_attributes(dict(attributes))


def inject(headers: MutableMapping[str, str]) -> None:
    """Adds `traceparent` (and `tracestate`) for the current span, if any."""
    if propagate is not None and _tracer is not None:
        propagate.inject(headers)
