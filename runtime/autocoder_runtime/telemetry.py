"""OpenTelemetry traces of a running system, exported over OTLP/HTTP (protobuf).

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, as
the generated manifests set it from `observability.otlp_endpoint`; then the `otlp` extra
(`pip install 'autocoder-runtime[otlp]'`) must be installed, or the system refuses to start
and says so. The SDK reads the rest of its standard environment (headers, timeout,
compression, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`).

One trace per accepted message, and its trace id is the runtime's own (the `trace_id` a 202
answers and the dead-letter table keeps): 32 hex characters are used as they are, any other
`X-Trace-Id` is hashed to 128 bits (and kept as the span attribute `autocoder.trace_id`).

- An *origin* span where the message enters the system: the ingress request (`POST /path`),
  a source's tick, a window's result. Its span id is derived from the trace id, so the spans
  of the components that take the message out of the inbox, perhaps in another process or
  after a restart, are its children without the inbox storing anything more.
- A span per message a component handles (`component.port`), the child of the component
  span that emitted it in this process, else of the origin span; a dead letter sets its
  status to ERROR with the reason.

Every message is traced (no sampling here: a collector can sample the tail). A client that
sends the same `X-Trace-Id` with several messages gets several origin spans with one id.
Metrics stay on `/metrics` (Prometheus); only traces are exported.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
HEX_TRACE_ID = re.compile(r"[0-9a-f]{32}")
SpanKind = Literal["server", "producer", "consumer"]


class TelemetryUnavailable(RuntimeError):
    """OTLP export was asked for, and this installation cannot do it."""


def endpoint() -> str | None:
    """The OTLP endpoint the environment names, or None: then nothing is exported."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    for name in ENDPOINT_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def otel_trace_id(trace_id: str) -> int:
    """The runtime's trace id as a 128-bit OpenTelemetry trace id."""
    if HEX_TRACE_ID.fullmatch(trace_id) and int(trace_id, 16):
        return int(trace_id, 16)
    return int.from_bytes(hashlib.sha256(trace_id.encode()).digest()[:16], "big") or 1


def origin_span_id(trace_id: str) -> int:
    """The span id of a message's origin span, derived from its trace id (see the module)."""
    digest = hashlib.sha256(b"autocoder-origin\0" + trace_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


class SpanHandle:
    """What the runtime does to a span it opened: its id (the parent of what is emitted under
    it), an outcome, a failure."""

    span_id: int | None = None

    def outcome(self, value: str) -> None:
        """processed, dropped (the logic filtered it out) or dead_letter."""

    def failed(self, error: str) -> None:
        """The message became a dead letter (or was not stored) for this reason."""


NO_SPAN = SpanHandle()


class Telemetry:
    """No export: every span is NO_SPAN. The base of OtlpTelemetry."""

    enabled = False

    @contextlib.contextmanager
    def origin(self, name: str, kind: SpanKind, component: str, trace_id: str) -> Iterator[SpanHandle]:
        yield NO_SPAN

    @contextlib.contextmanager
    def handling(
        self, component: str, port: str, trace_id: str, parent_span: int | None
    ) -> Iterator[SpanHandle]:
        yield NO_SPAN

    def shutdown(self) -> None:
        """Flush what is buffered and stop the exporter (blocking: call it from a thread)."""


class _Handle(SpanHandle):
    def __init__(self, span: Span) -> None:
        self.span = span
        self.span_id = span.get_span_context().span_id

    def outcome(self, value: str) -> None:
        self.span.set_attribute("autocoder.outcome", value)

    def failed(self, error: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.span.set_status(Status(StatusCode.ERROR, error[:1000]))


# the ids the next root span gets (see _ForcedIds); set only around one start_span call
_FORCED: ContextVar[tuple[int, int] | None] = ContextVar("autocoder_forced_ids", default=None)


class OtlpTelemetry(Telemetry):
    """Spans through the OpenTelemetry SDK, batched and exported over OTLP/HTTP."""

    enabled = True

    def __init__(self, system: str, version: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        class ForcedIds(RandomIdGenerator):
            """Random ids, except for an origin span: the runtime's trace id and the span id
            derived from it."""

            def generate_trace_id(self) -> int:
                forced = _FORCED.get()
                return forced[0] if forced else super().generate_trace_id()

            def generate_span_id(self) -> int:
                forced = _FORCED.get()
                return forced[1] if forced else super().generate_span_id()

        self.system = system
        resource = Resource.create(
            {
                "service.name": os.environ.get("OTEL_SERVICE_NAME") or system,
                "service.version": version,
            }
        )
        # one provider per System, not the global one: tests run several systems in a process
        self.provider: TracerProvider = TracerProvider(
            resource=resource, sampler=ALWAYS_ON, id_generator=ForcedIds()
        )
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer: Tracer = self.provider.get_tracer("autocoder_runtime")

    def _attributes(self, component: str, trace_id: str, **more: str) -> dict[str, Any]:
        return {
            "autocoder.system": self.system,
            "autocoder.component": component,
            "autocoder.trace_id": trace_id,
            **more,
        }

    @contextlib.contextmanager
    def origin(self, name: str, kind: SpanKind, component: str, trace_id: str) -> Iterator[SpanHandle]:
        from opentelemetry.context import Context

        token = _FORCED.set((otel_trace_id(trace_id), origin_span_id(trace_id)))
        try:
            span = self.tracer.start_span(
                name, context=Context(), kind=_kind(kind), attributes=self._attributes(component, trace_id)
            )
        finally:
            _FORCED.reset(token)
        with _ended(span):
            yield _Handle(span)

    @contextlib.contextmanager
    def handling(
        self, component: str, port: str, trace_id: str, parent_span: int | None
    ) -> Iterator[SpanHandle]:
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

        parent = SpanContext(
            trace_id=otel_trace_id(trace_id),
            span_id=parent_span if parent_span is not None else origin_span_id(trace_id),
            is_remote=parent_span is None,  # the origin span: another process, or another start
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        span = self.tracer.start_span(
            f"{component}.{port}",
            context=set_span_in_context(NonRecordingSpan(parent)),
            kind=_kind("consumer"),
            attributes=self._attributes(component, trace_id, **{"autocoder.port": port}),
        )
        with _ended(span):
            yield _Handle(span)

    def shutdown(self) -> None:
        self.provider.shutdown()


@contextlib.contextmanager
def _ended(span: Span) -> Iterator[None]:
    """End the span however the block ends; an exception escaping it is recorded."""
    try:
        yield
    except BaseException as exc:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:1000]))
        raise
    finally:
        span.end()


def _kind(kind: SpanKind) -> Any:
    from opentelemetry.trace import SpanKind as OtelKind

    return {"server": OtelKind.SERVER, "producer": OtelKind.PRODUCER, "consumer": OtelKind.CONSUMER}[kind]


def check_installed() -> None:
    """Raise TelemetryUnavailable when an endpoint is set and the OTLP extra is missing."""
    if endpoint() is None:
        return
    try:
        for module in ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter"):
            importlib.import_module(module)
    except ImportError as exc:
        raise TelemetryUnavailable(
            f"OTEL_EXPORTER_OTLP_ENDPOINT is set ({endpoint()}) but the OpenTelemetry exporter is "
            f"not installed ({exc}): install it with pip install 'autocoder-runtime[otlp]' (a "
            "generated system: its `otlp` extra), or unset OTEL_EXPORTER_OTLP_ENDPOINT"
        ) from None


def from_environment(system: str, version: str) -> Telemetry:
    """OtlpTelemetry when an endpoint is set (TelemetryUnavailable without the extra), else
    the no-op Telemetry."""
    if endpoint() is None:
        return Telemetry()
    check_installed()
    return OtlpTelemetry(system, version)
