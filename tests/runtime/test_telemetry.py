"""OpenTelemetry export: with OTEL_EXPORTER_OTLP_ENDPOINT set, a running system sends its
spans over OTLP/HTTP to a receiver written here (a real HTTP server on 127.0.0.1 decoding the
protobuf with opentelemetry-proto): one trace per accepted message whose id is the runtime's
trace id, an origin span and a span per component the message went through, parented as it
travelled. Set without the exporter installed, the system refuses to start and says why."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from autocoder_runtime.cli import main
from autocoder_runtime.kinds import Source
from autocoder_runtime.messages import Message
from autocoder_runtime.telemetry import TelemetryUnavailable
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from pydantic import BaseModel
from rtkit import AUTH, Hook, Item, configured, demo, make, running, wait_until

SERVER, CONSUMER, PRODUCER = 2, 5, 4  # Span.SpanKind values of the OTLP protobuf
STATUS_ERROR = 2


class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces, protobuf (gzip or not); keeps every span
    with its resource attributes."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def take(self, path: str, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            self.paths.append(path)
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "kind": span.kind,
                                "status": span.status.code,
                                "message": span.status.message,
                                "attributes": {a.key: _value(a.value) for a in span.attributes},
                                "resource": resource,
                            }
                        )

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.take(self.path, body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture
def receiver(data, monkeypatch):
    collector = Receiver()
    with collector.running() as url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME"):
            monkeypatch.delenv(name, raising=False)
        yield collector


class Ticks(Source):
    outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Item}

    def generate(self, seq: int, ts: float) -> Message:
        return {"id": f"t{seq}", "n": seq, "ts": ts}


def by_name(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    named = {s["name"]: s for s in spans}
    assert len(named) == len(spans), [s["name"] for s in spans]
    return named


def test_each_message_is_a_trace_with_the_runtimes_trace_id(receiver):
    with running(demo()) as client:
        ok = client.post("/items", json={"id": "a1"}, headers=AUTH).json()["trace_id"]
        bad = client.post("/items", json={"id": "b1", "act": "reject"}, headers=AUTH).json()["trace_id"]
        named = client.post("/items", json={"id": "c1"}, headers={**AUTH, "x-trace-id": "order-42"})
        assert named.json()["trace_id"] == "order-42"
        wait_until(lambda: client.get("/items/a1", headers=AUTH).status_code == 200)
    # the stop flushed every span: nothing to wait for
    assert set(receiver.paths) == {"/v1/traces"}

    spans = by_name(receiver.trace(ok))
    assert set(spans) == {"POST /items", "work.in", "items.in"}
    origin, work, items = spans["POST /items"], spans["work.in"], spans["items.in"]
    assert (origin["kind"], origin["parent"]) == (SERVER, "")  # the root of the trace
    assert work["parent"] == origin["span_id"]  # taken out of the inbox: child of the origin
    assert items["parent"] == work["span_id"]  # emitted in process: child of its emitter
    assert work["kind"] == items["kind"] == CONSUMER
    for span in (origin, work, items):
        assert span["attributes"]["autocoder.trace_id"] == ok
        assert span["attributes"]["autocoder.system"] == "demo"
    assert (work["attributes"]["autocoder.component"], work["attributes"]["autocoder.port"]) == ("work", "in")
    assert work["attributes"]["autocoder.outcome"] == items["attributes"]["autocoder.outcome"] == "processed"
    assert origin["resource"]["service.name"] == "demo"
    assert origin["resource"]["service.version"] == "1.0.0"

    rejected = by_name(receiver.trace(bad))
    assert set(rejected) == {"POST /items", "work.in"}  # nothing went on to the store
    assert rejected["work.in"]["status"] == STATUS_ERROR
    assert "cannot handle b1" in rejected["work.in"]["message"]
    assert rejected["work.in"]["attributes"]["autocoder.outcome"] == "dead_letter"

    # a trace id that is not 32 hex characters is hashed to 128 bits and kept as an attribute
    hashed = hashlib.sha256(b"order-42").digest()[:16].hex()
    third = by_name(receiver.trace(hashed))
    assert set(third) == {"POST /items", "work.in", "items.in"}
    assert third["work.in"]["attributes"]["autocoder.trace_id"] == "order-42"


def test_a_source_message_starts_its_trace_at_a_producer_span(receiver):
    files = configured(Hook, config={"target": "file", "path": "ticks.jsonl"})
    ticks = configured(Ticks, config={"interval_s": 0.005, "max_messages": 3})
    system = make("src", {"ticks": ticks, "files": files}, [("ticks", "out", "files", "in")])
    with running(system):
        wait_until(lambda: _lines() == 3)
    emits = [s for s in receiver.spans if s["name"] == "ticks emit"]
    assert len(emits) == 3
    for emit in emits:
        spans = by_name(receiver.trace(emit["trace_id"]))
        assert set(spans) == {"ticks emit", "files.in"}
        assert emit["kind"] == PRODUCER
        assert spans["files.in"]["parent"] == emit["span_id"]


def _lines() -> int:
    from autocoder_runtime.component import data_dir

    path = data_dir() / "ticks.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_an_endpoint_without_the_exporter_installed_stops_the_start(receiver, monkeypatch, capsys):
    # the OTLP extra "not installed": its modules cannot be imported in this process
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    assert main(lambda: demo(), ["serve", "--port", "1"]) == 2
    error = capsys.readouterr().err
    assert "OTEL_EXPORTER_OTLP_ENDPOINT is set" in error
    assert "pip install 'autocoder-runtime[otlp]'" in error
    with pytest.raises(TelemetryUnavailable, match=r"autocoder-runtime\[otlp\]"), running(demo()):
        pass
    assert receiver.spans == []


def test_no_endpoint_no_export(data, monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    system = demo()
    with running(system) as client:
        assert client.post("/items", json={"id": "a1"}, headers=AUTH).status_code == 202
        assert not system.telemetry.enabled
