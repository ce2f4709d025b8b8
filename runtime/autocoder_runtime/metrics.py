"""Prometheus metrics of one system, every name prefixed with the system's name.

Counters count each event once, where it happens: a message received by a component, emitted,
dropped by its logic, retried, dead-lettered; an HTTP answer by status. Gauges give the state
back-pressure is made of: queue depth and messages in flight per component, the inbox backlog,
each circuit breaker's state.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# no *_created series: they only add noise to every scrape
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
CIRCUIT_STATES = {"closed": 0, "open": 1, "half_open": 2}


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

    def touch(self, component: str) -> None:
        """Create a component's series at zero, so /metrics lists it before any traffic."""
        for counter in (self.received, self.emitted, self.dropped, self.retries, self.dead_letters):
            counter.labels(component=component)
        for gauge in (self.queue_depth, self.in_flight, self.circuit):
            gauge.labels(component=component).set(0)
        self.consumer_up.labels(component=component).set(1)
        self.latency.labels(component=component)
