"""The kernel path's shortcuts do what the longer way did: `validate` gives what pydantic's
model_validate/model_dump give (and refuses what they refuse), a trace id is a uuid4's hex, the
labelled series a component counts on are its registry's own (a renewed registry's after a
renew) and a scrape of them gives, byte for byte, what prometheus_client's own Counter, Gauge
and Histogram give for the same events, a consumer lets the loop run between messages, and a
message emitted to one, several or no targets reaches each of them once."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any, ClassVar

import pytest
from autocoder_runtime.component import Component
from autocoder_runtime.kinds import Custom, Store
from autocoder_runtime.messages import Envelope, Message, MessageModel, Rejected, new_trace_id, validate
from autocoder_runtime.metrics import Metrics
from autocoder_runtime.system import System
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError
from rtkit import Item, Recorder, make, spec


class Nested(MessageModel):
    tag: str = Field(default="t", max_length=5)
    at: float = 0.0


class Shape(MessageModel):
    id: str = Field(pattern=r"^[a-z]{1,8}$")
    n: int = Field(default=3, ge=-100, le=100)
    ratio: float = Field(default=0.5, ge=0, le=1)
    flags: list[bool] = []
    inner: Nested = Nested()
    maybe: str | None = None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-200, 200) | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
payloads = st.one_of(
    st.fixed_dictionaries(
        {"id": st.from_regex(r"^[a-z]{1,8}$", fullmatch=True)},
        optional={
            "n": st.integers(-150, 150),
            "ratio": st.floats(allow_nan=True),
            "flags": st.lists(st.booleans() | st.integers(0, 1), max_size=3),
            "inner": st.fixed_dictionaries({}, optional={"tag": st.text(max_size=7), "at": st.floats()}),
            "maybe": st.none() | st.text(max_size=4) | st.integers(),
            "extra": json_values,
        },
    ),
    st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    json_values,
)


@settings(max_examples=300, deadline=None)
@given(payloads)
def test_validate_is_model_validate_then_model_dump(payload: Any) -> None:
    try:
        expected: dict[str, Any] | None = Shape.model_validate(payload).model_dump(mode="json")
        errors = None
    except ValidationError as exc:
        expected, errors = None, exc.errors(include_url=False, include_input=False)
    if errors is None:
        assert validate(Shape, payload) == expected
        return
    with pytest.raises(Rejected) as raised:
        validate(Shape, payload)
    assert raised.value.args[0].startswith("schema Shape: ")
    assert len(errors) == raised.value.args[0].count("'loc'")


def test_a_trace_id_is_the_hex_of_a_version_4_uuid() -> None:
    ids = {new_trace_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, text)
    assert all(len(Envelope({}).trace_id) == 32 for _ in range(10))


class Pass(Custom):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Item}

    def handle_message(self, port: str, msg: Message) -> list[tuple[str, Message]]:
        return [("out", msg)]


def sample(system: System, name: str, component: str) -> float | None:
    """A sample of the system's /metrics, as a scrape reads it."""
    return system.metrics.registry.get_sample_value(f"{system.name}_{name}", {"component": component})


def test_a_consumer_lets_the_loop_run_between_messages_that_never_wait() -> None:
    Recorder.seen = []
    system = make("yield", {"quiet": Recorder}, [])
    quiet = system.components["quiet"]

    async def run() -> list[int]:
        quiet.queues = {"in": asyncio.Queue()}
        for i in range(20):
            quiet.queues["in"].put_nowait(Envelope({"id": f"m{i}"}))
        consumer = asyncio.create_task(quiet._consume("in"))
        progress = []
        for _ in range(5):
            await asyncio.sleep(0)
            progress.append(len(Recorder.seen))
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        return progress

    progress = asyncio.run(run())
    assert progress[-1] < 20  # the consumer did not take all twenty in one turn
    assert progress == sorted(progress) and progress[-1] > progress[0]
    assert sample(system, "messages_received_total", "quiet") == len(Recorder.seen)


@pytest.mark.parametrize("targets", [0, 1, 3])
def test_an_output_reaches_each_bound_input_once_with_its_own_copy(targets: int) -> None:
    sinks = {f"q{i}": Recorder for i in range(targets)}
    system = make("fan", {"p": Pass, **sinks}, [("p", "out", name, "in") for name in sinks])
    source = system.components["p"]

    async def run() -> None:
        for name in sinks:
            system.components[name].queues = {"in": asyncio.Queue()}
        await source.handle("in", Envelope({"id": "a"}, trace_id="t" * 32))

    asyncio.run(run())
    got = [system.components[name].queues["in"].get_nowait() for name in sinks]
    assert [e.payload for e in got] == [{"id": "a", "n": 0, "ts": 0.0, "act": "ok"}] * targets
    assert len({id(e.payload) for e in got}) == targets  # each target may change its own
    assert all(e.trace_id == "t" * 32 for e in got)
    assert all(system.components[name].queues["in"].empty() for name in sinks)
    assert sample(system, "messages_emitted_total", "p") == 1
    assert sample(system, "messages_received_total", "p") == 1
    assert sample(system, "messages_dropped_total", "p") == 0
    assert sample(system, "in_flight", "p") == 0
    assert sample(system, "processing_seconds_count", "p") == 1


def test_the_series_a_component_counts_on_follow_its_systems_registry() -> None:
    system = make("series", {"quiet": Recorder}, [])
    quiet = system.components["quiet"]
    first = quiet.series()
    assert first.received is system.metrics.received.labels(component="quiet")
    assert quiet.series() is first
    old = system.metrics
    system.metrics = Metrics("series")  # what a test's reused system does between runs
    system.metrics.touch("quiet")
    asyncio.run(quiet.handle("in", Envelope({"id": "b"})))
    assert sample(system, "messages_received_total", "quiet") == 1
    assert sample(system, "processing_seconds_count", "quiet") == 1
    assert old.registry.get_sample_value("series_messages_received_total", {"component": "quiet"}) == 0


class BadKey(Store):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
    spec = spec(config={"key": "id", "unknown": 1})


def test_a_store_whose_config_fails_validation_refuses_every_message_not_only_the_first() -> None:
    store = make("bad", {"bad": BadKey}, []).components["bad"]
    assert isinstance(store, Store)
    for _ in range(2):
        with pytest.raises(ValidationError):
            store.config()


def test_a_component_without_the_input_port_rejects_the_message() -> None:
    quiet: Component = make("noport", {"quiet": Recorder}, []).components["quiet"]

    async def run() -> None:
        dead: list[BaseException] = []

        async def dead_letter(component: str, port: str, exc: BaseException, envelope: Envelope) -> None:
            dead.append(exc)

        quiet.system.dead_letter = dead_letter  # type: ignore[method-assign]
        await quiet.handle("nope", Envelope({"id": "c"}))
        assert [str(e) for e in dead] == ["no input port 'nope'"]

    asyncio.run(run())


class Reference:
    """The same families as `Metrics`, made of prometheus_client's own Counter, Gauge and
    Histogram: what a scrape gave before the kernel's series became plain numbers."""

    def __init__(self, prefix: str) -> None:
        from autocoder_runtime.metrics import LATENCY_BUCKETS
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry()

        def counter(name: str, text: str, labels: tuple[str, ...] = ("component",)) -> Counter:
            return Counter(f"{prefix}_{name}", text, labels, registry=registry)

        def gauge(name: str, text: str) -> Gauge:
            return Gauge(f"{prefix}_{name}", text, ["component"], registry=registry)

        self.received = counter("messages_received", "Messages a component took in")
        self.emitted = counter("messages_emitted", "Messages a component emitted")
        self.dropped = counter("messages_dropped", "Messages a component's logic filtered out")
        self.retries = counter("retries", "Retries of a transient failure")
        self.dead_letters = counter("dead_letters", "Messages written to the dead-letter table")
        self.responses = counter("http_responses", "HTTP answers by route and status", ("route", "status"))
        self.queue_depth = gauge("queue_depth", "Messages waiting in a component's input queues")
        self.in_flight = gauge("in_flight", "Messages a component is processing now")
        self.circuit = gauge("circuit_state", "Circuit breaker: 0 closed, 1 open, 2 half-open")
        self.consumer_up = gauge("consumers_up", "1 while every consumer of the component runs")
        self.inbox_backlog = Gauge(
            f"{prefix}_inbox_backlog", "Accepted messages not yet fully processed", registry=registry
        )
        self.latency = Histogram(
            f"{prefix}_processing_seconds",
            "Per-message processing latency",
            ["component"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )

    def touch(self, component: str) -> None:
        for counter in (self.received, self.emitted, self.dropped, self.retries, self.dead_letters):
            counter.labels(component=component)
        for gauge in (self.queue_depth, self.in_flight, self.circuit):
            gauge.labels(component=component).set(0)
        self.consumer_up.labels(component=component).set(1)
        self.latency.labels(component=component)


COMPONENTS = ["c1", "c-2", 'odd"name\\']
events = st.lists(
    st.tuples(
        st.sampled_from(["received", "emitted", "dead_letters", "in_flight+", "in_flight-", "queue_depth"])
        | st.sampled_from(["circuit", "latency", "responses", "backlog", "touch"]),
        st.sampled_from([*COMPONENTS, "late"]),
        st.sampled_from([0, 1, 2.5, 0.0005, 0.0004999, 0.3, 10.0, 11, -1.0, math.inf, math.nan])
        | st.floats(0, 20),
    ),
    max_size=40,
)


def _apply(metrics: Any, event: str, component: str, value: float) -> None:
    if event in ("received", "emitted", "dead_letters"):
        getattr(metrics, event).labels(component=component).inc(abs(value) if value == value else 1)
    elif event == "in_flight+":
        metrics.in_flight.labels(component).inc()
    elif event == "in_flight-":
        metrics.in_flight.labels(component=component).dec()
    elif event in ("queue_depth", "circuit"):
        getattr(metrics, event).labels(component=component).set(value)
    elif event == "latency":
        metrics.latency.labels(component=component).observe(value)
    elif event == "responses":
        metrics.responses.labels(route="/items", status=str(int(value) if math.isfinite(value) else 0)).inc()
    elif event == "backlog":
        metrics.inbox_backlog.set(value)
    else:
        metrics.touch(component)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(COMPONENTS), unique=True), events, st.data())
def test_a_scrape_gives_what_prometheus_clients_own_metrics_give(
    touched: list[str], happened: list[tuple[str, str, float]], data: st.DataObject
) -> None:
    from prometheus_client import generate_latest

    ours, reference = Metrics("sy"), Reference("sy")
    for component in touched:
        ours.touch(component)
        reference.touch(component)
    for event in happened:
        _apply(ours, *event)
        _apply(reference, *event)
    assert generate_latest(ours.registry) == generate_latest(reference.registry)
    names = data.draw(
        st.lists(
            st.sampled_from(
                [
                    "sy_messages_received_total",
                    "sy_processing_seconds_bucket",
                    "sy_processing_seconds_count",
                    "sy_in_flight",
                    "sy_inbox_backlog",
                    "sy_http_responses_total",
                    "sy_nothing",
                ]
            ),
            unique=True,
        )
    )
    # a restricted registry yields its families in no set order, for prometheus_client too
    assert sorted(generate_latest(ours.registry.restricted_registry(names)).splitlines()) == sorted(
        generate_latest(reference.registry.restricted_registry(names)).splitlines()
    )


@pytest.mark.parametrize(
    "misuse",
    [
        lambda m: m.received.labels(),
        lambda m: m.received.labels(route="x"),
        lambda m: m.received.labels("a", component="b"),
        lambda m: m.received.labels(component="a").inc(-1),
    ],
)
def test_a_misused_metric_is_refused_as_prometheus_client_refuses_it(misuse: Any) -> None:
    with pytest.raises(ValueError) as ours:
        misuse(Metrics("m"))
    with pytest.raises(ValueError) as reference:
        misuse(Reference("m"))
    assert str(ours.value) == str(reference.value)
