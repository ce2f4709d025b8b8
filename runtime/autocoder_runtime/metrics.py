"""Prometheus metrics of one system, every name prefixed with the system's name.

Counters count each event once, where it happens: a message received by a component, emitted,
dropped by its logic, retried, dead-lettered; an HTTP answer by status. Gauges give the state
back-pressure is made of: queue depth and messages in flight per component, the inbox backlog,
each circuit breaker's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# no *_created series: they only add noise to every scrape
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
CIRCUIT_STATES = {"closed": 0, "open": 1, "half_open": 2}


@dataclass(frozen=True, slots=True)
class Series:
    """One component's labelled series, looked up once: `.labels(component=...)` hashes and
    checks its label values on every call, and the kernel path counts four to six events a
    message (a child, once made, stays its metric's series for that label value)."""

    received: Counter
    emitted: Counter
    dropped: Counter
    retries: Counter
    dead_letters: Counter
    queue_depth: Gauge
    in_flight: Gauge
    circuit: Gauge
    consumer_up: Gauge
    latency: Histogram


class Metrics:
    """One registry per running system (tests run several in one process)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.registry = CollectorRegistry()
        by_component = ["component"]

        def counter(name: str, text: str, labels: list[str] = by_component) -> Counter:
            return Counter(f"{prefix}_{name}", text, labels, registry=self.registry)

        def gauge(name: str, text: str, labels: list[str] = by_component) -> Gauge:
            return Gauge(f"{prefix}_{name}", text, labels, registry=self.registry)

        self.received = counter("messages_received", "Messages a component took in")
        self.emitted = counter("messages_emitted", "Messages a component emitted")
        self.dropped = counter("messages_dropped", "Messages a component's logic filtered out")
        self.retries = counter("retries", "Retries of a transient failure")
        self.dead_letters = counter("dead_letters", "Messages written to the dead-letter table")
        self.responses = counter("http_responses", "HTTP answers by route and status", ["route", "status"])
        self.queue_depth = gauge("queue_depth", "Messages waiting in a component's input queues")
        self.in_flight = gauge("in_flight", "Messages a component is processing now")
        self.circuit = gauge("circuit_state", "Circuit breaker: 0 closed, 1 open, 2 half-open")
        self.consumer_up = gauge("consumers_up", "1 while every consumer of the component runs")
        self.inbox_backlog = Gauge(
            f"{prefix}_inbox_backlog", "Accepted messages not yet fully processed", registry=self.registry
        )
        self.latency = Histogram(
            f"{prefix}_processing_seconds",
            "Per-message processing latency",
            by_component,
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.by_component: dict[str, Series] = {}

    def of(self, component: str) -> Series:
        """The component's series (made, at zero, on first use: as `labels` would make them)."""
        found = self.by_component.get(component)
        if found is None:
            found = self.by_component[component] = Series(
                received=self.received.labels(component=component),
                emitted=self.emitted.labels(component=component),
                dropped=self.dropped.labels(component=component),
                retries=self.retries.labels(component=component),
                dead_letters=self.dead_letters.labels(component=component),
                queue_depth=self.queue_depth.labels(component=component),
                in_flight=self.in_flight.labels(component=component),
                circuit=self.circuit.labels(component=component),
                consumer_up=self.consumer_up.labels(component=component),
                latency=self.latency.labels(component=component),
            )
        return found

    def touch(self, component: str) -> None:
        """Create a component's series at zero, so /metrics lists it before any traffic."""
        series = self.of(component)
        for gauge in (series.queue_depth, series.in_flight, series.circuit):
            gauge.set(0)
        series.consumer_up.set(1)
