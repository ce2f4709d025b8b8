"""Prometheus metrics of one system, every name prefixed with the system's name.

Counters count each event once, where it happens: a message received by a component, emitted,
dropped by its logic, retried, dead-lettered; an HTTP answer by status. Gauges give the state
back-pressure is made of: queue depth and messages in flight per component, the inbox backlog,
each circuit breaker's state.

The per-component series the kernel path counts on (five or six events a message) are plain
numbers, turned into prometheus_client samples when the registry is collected: the same
families, samples and text a prometheus_client Counter, Gauge or Histogram gives, without the
lock, the label checks and the observability checks those take on every event (together more
than the rest of a transformer's message). They are counted on the event loop's thread alone:
the kernel, the system's delivery and the app's handlers, the scrape included, all run there.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# no *_created series: they only add noise to every scrape
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
CIRCUIT_STATES = {"closed": 0, "open": 1, "half_open": 2}


class CounterValue:
    """One counter series: only goes up (prometheus_client's Counter refuses the same)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount

    def add_samples(self, metric: Metric, name: str, labels: dict[str, str]) -> None:
        metric.add_sample(f"{name}_total", labels, self.value)


class GaugeValue:
    """One gauge series."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = float(value)

    def add_samples(self, metric: Metric, name: str, labels: dict[str, str]) -> None:
        metric.add_sample(name, labels, self.value)


class HistogramValue:
    """One histogram series over LATENCY_BUCKETS (and +Inf): a count per bucket, the sum."""

    __slots__ = ("counts", "sum")

    BOUNDS = (*LATENCY_BUCKETS, math.inf)
    LE = tuple(floatToGoString(bound) for bound in BOUNDS)  # type: ignore[no-untyped-call]

    def __init__(self) -> None:
        self.counts = [0.0] * len(self.BOUNDS)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.sum += amount
        if amount == amount:
            self.counts[bisect_left(self.BOUNDS, amount)] += 1  # the first bound >= amount

    def add_samples(self, metric: Metric, name: str, labels: dict[str, str]) -> None:
        total = 0.0
        for le, count in zip(self.LE, self.counts, strict=True):
            total += count
            metric.add_sample(f"{name}_bucket", {**labels, "le": le}, total)
        metric.add_sample(f"{name}_count", labels, total)
        metric.add_sample(f"{name}_sum", labels, self.sum)


V = TypeVar("V", CounterValue, GaugeValue, HistogramValue)


class Family(Collector, Generic[V]):
    """A labelled metric whose series are `V`s: `labels` as prometheus_client's (the same
    checks, the same string label values), samples made at collection."""

    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        documentation: str,
        kind: str,
        value: Callable[[], V],
        labelnames: tuple[str, ...] = ("component",),
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.kind = kind
        self.make: Callable[[], V] = value
        self.labelnames = labelnames
        self.series: dict[tuple[str, ...], V] = {}
        registry.register(self)

    def labels(self, *values: object, **named: object) -> V:
        if values and named:
            raise ValueError("Can't pass both *args and **kwargs")
        if named:
            if sorted(named) != sorted(self.labelnames):
                raise ValueError("Incorrect label names")
            key = tuple(str(named[label]) for label in self.labelnames)
        else:
            if len(values) != len(self.labelnames):
                raise ValueError("Incorrect label count")
            key = tuple(str(value) for value in values)
        found = self.series.get(key)
        if found is None:
            found = self.series[key] = self.make()
        return found

    def describe(self) -> list[Metric]:
        return [Metric(self.name, self.documentation, self.kind)]

    def collect(self) -> list[Metric]:
        metric = Metric(self.name, self.documentation, self.kind)
        for key, series in list(self.series.items()):
            series.add_samples(metric, self.name, dict(zip(self.labelnames, key, strict=True)))
        return [metric]


@dataclass(frozen=True, slots=True)
class Series:
    """One component's series, looked up once (a component keeps them: see Component.series)."""

    received: CounterValue
    emitted: CounterValue
    dropped: CounterValue
    retries: CounterValue
    dead_letters: CounterValue
    queue_depth: GaugeValue
    in_flight: GaugeValue
    circuit: GaugeValue
    consumer_up: GaugeValue
    latency: HistogramValue


class Metrics:
    """One registry per running system (tests run several in one process)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.registry = registry = CollectorRegistry()

        def counter(name: str, text: str) -> Family[CounterValue]:
            return Family(registry, f"{prefix}_{name}", text, "counter", CounterValue)

        def gauge(name: str, text: str) -> Family[GaugeValue]:
            return Family(registry, f"{prefix}_{name}", text, "gauge", GaugeValue)

        self.received = counter("messages_received", "Messages a component took in")
        self.emitted = counter("messages_emitted", "Messages a component emitted")
        self.dropped = counter("messages_dropped", "Messages a component's logic filtered out")
        self.retries = counter("retries", "Retries of a transient failure")
        self.dead_letters = counter("dead_letters", "Messages written to the dead-letter table")
        self.responses = Counter(
            f"{prefix}_http_responses",
            "HTTP answers by route and status",
            ["route", "status"],
            registry=registry,
        )
        self.queue_depth = gauge("queue_depth", "Messages waiting in a component's input queues")
        self.in_flight = gauge("in_flight", "Messages a component is processing now")
        self.circuit = gauge("circuit_state", "Circuit breaker: 0 closed, 1 open, 2 half-open")
        self.consumer_up = gauge("consumers_up", "1 while every consumer of the component runs")
        self.inbox_backlog = Gauge(
            f"{prefix}_inbox_backlog", "Accepted messages not yet fully processed", registry=registry
        )
        self.latency = Family(
            registry,
            f"{prefix}_processing_seconds",
            "Per-message processing latency",
            "histogram",
            HistogramValue,
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
