"""The test harness shares one event loop, one system per component class and one database
between the runs of a test (testing._Reused), and still gives every run a new component, zero
counters and an empty database: nothing one run did may reach the next."""

from __future__ import annotations

import asyncio
from pathlib import Path

from autocoder_runtime.metrics import Metrics
from autocoder_runtime.testing import harness, release_databases, run_many, run_once, stored
from rtkit import Items
from test_aggregator import sums


def _samples(metrics: Metrics) -> list[tuple[str, list[tuple[str, str]], float]]:
    return sorted(
        (sample.name, sorted(sample.labels.items()), sample.value)
        for family in metrics.registry.collect()
        for sample in family.samples
    )


def test_a_store_finds_no_record_of_the_run_before(data: Path):
    try:
        for n, key in enumerate(["a", "b", "c"]):
            record = {"id": key, "n": n, "ts": 0.0, "act": "ok"}
            assert stored(Items, "in", [{"id": key, "n": n}]) == {key: record}
    finally:
        release_databases()


def test_an_aggregator_finds_no_window_of_the_run_before(data: Path):
    Counts = sums(window_s=3600)
    try:
        ((_, thrice),) = run_many(Counts, "in", [{"id": "a", "n": 2}] * 3)
        assert (thrice["count"], thrice["total"]) == (3, 6)
        for _ in range(3):  # the same window, were anything left of the runs before
            ((_, once),) = run_once(Counts, "in", {"id": "a", "n": 2})
            assert (once["count"], once["total"]) == (1, 2)
    finally:
        release_databases()


def test_every_run_gets_a_new_component_and_zero_counters_on_a_reused_system(data: Path):
    async def use(touch: bool) -> tuple[object, object, list]:
        async with harness(Items) as component:
            metrics = component.system.metrics
            samples = _samples(metrics)  # as the run finds them
            if touch:  # what a run's retries, an open circuit and a closed window leave behind
                metrics.retries.labels(component="items").inc(5)
                metrics.circuit.labels(component="items").set(1)
                metrics.received.labels(component="other").inc()
                component.system.added(3)
            return component, component.system, samples

    try:
        loop_runs = asyncio.Runner()
        first, system, fresh = loop_runs.run(use(True))
        second, again, after = loop_runs.run(use(False))
        loop_runs.close()
        assert again is system  # the system is reused...
        assert second is not first  # ...its component is not
        assert system.backlog == 0
        assert after == fresh  # every series as the new system had it, before the first run
        new = Metrics("test")
        new.touch("items")
        assert after == _samples(new)
    finally:
        release_databases()


def test_one_event_loop_serves_a_tests_runs_and_release_closes_it(data: Path):
    loops = []

    class Seen(Items):
        async def open(self) -> None:
            loops.append(asyncio.get_running_loop())

    try:
        for key in ("a", "b"):
            stored(Seen, "in", [{"id": key}])
        assert loops[0] is loops[1] and not loops[0].is_closed()
    finally:
        release_databases()
    assert loops[0].is_closed()
