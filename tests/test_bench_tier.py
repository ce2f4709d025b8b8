"""The bench tier (validate/bench.py): generated in memory from examples/orders and benchmarked
as the bench:<component> task does.

- A measured path that dead-letters its messages fails, however fast it is (before, a logic
  that failed every message was timed as a fast component and passed).
- The sequential rule settles a clear case early: a component well under its budget passes
  before the cap, one whose logic sleeps or computes past its budget fails at the first look.
- The order-statistic bounds hold the confidence they claim (exact binomial sums), and the
  load correction takes out what a competing process adds but not what the component spends.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import compile_data, component, orders_arch

from autocoder.codegen.component import generate_component
from autocoder.codegen.provider import get_provider
from autocoder.codegen.strategies import simplest_message
from autocoder.codegen.system import generate_runtime
from autocoder.ir.models import Slice
from autocoder.validate.bench import (
    LOOKS,
    QUANTILE,
    RunQueueWait,
    Session,
    bench_component,
    bound_alpha,
    bound_ranks,
    decide,
)
from autocoder.validate.inprocess import importable

SYSTEM = "bench_dead"  # a name no other test imports: the bench imports the package in process
SLOW_S = 0.003  # over the pricer's limit: a transformer's 2 ms budget + 25 % tolerance


def generate(arch: dict, directory: Path) -> tuple[Path, Slice]:
    """The pricer of `arch` generated (with its system's runtime files) under `directory`."""
    arch["system"]["name"] = SYSTEM
    # hypothesis finds the simplest message of a patterned string slowly (generate_runtime and
    # the bench both ask for one): without the pattern it is "" at once
    del arch["schemas"]["Order"]["fields"]["order_id"]["pattern"]
    result = compile_data(arch)
    assert result.ir is not None, [d.format() for d in result.diagnostics]
    files = generate_runtime(result.ir)
    files.update(generate_component(result.slices["pricer"], get_provider("offline")))
    src = directory / "src"
    for path, text in files.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(text)
    return src, result.slices["pricer"]


@contextlib.contextmanager
def generated(arch: dict, directory: Path) -> Iterator[tuple[Path, Slice]]:
    """`generate`, its package forgotten afterwards (the bench imports it in this process)."""
    src, slice_ = generate(arch, directory)
    try:
        yield src, slice_
    finally:
        if str(src) in sys.path:
            sys.path.remove(str(src))
        for name in [m for m in sys.modules if m == SYSTEM or m.startswith(SYSTEM + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def pricer(tmp_path_factory) -> Iterator[tuple[Path, Slice]]:
    """examples/orders' pricer, generated once for the tests that time it as it is or slowed."""
    with generated(orders_arch(), tmp_path_factory.mktemp("pricer")) as found:
        yield found


def bench(pricer: tuple[Path, Slice], data: Path, iterations: int = LOOKS[-1]) -> dict:
    src, slice_ = pricer
    return bench_component(src, slice_, data, simplest_message, iterations=iterations)


def test_a_path_that_dead_letters_fails_the_bench(arch, tmp_path, monkeypatch):
    # every dead letter is a commit: no fsync each keeps this test quick
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", "NORMAL")
    pricer = component(arch, "pricer")
    pricer["logic"] = {"set": {"total": "unit_price / (quantity - quantity)"}}
    # an example the logic gets wrong is the bench's sample message (no search for one)
    order = {"order_id": "A-000001", "quantity": 2, "unit_price": 5}
    pricer["examples"] = [{"in": order, "out": {"total": 10}}]
    with generated(arch, tmp_path) as dividing:
        result = bench(dividing, tmp_path / "data", iterations=20)
    assert result["dead_letters"] > 0 and result["ok"] is False and result["decision"] == "dead letters"


def test_each_component_of_a_session_starts_on_an_empty_database(arch, tmp_path, monkeypatch):
    """A batch's components share one database, emptied for each: a pricer that dead-letters
    every message, measured twice in one session, counts its own dead letters each time (the
    warm-up's and the 20 timed messages'), not the first run's too."""
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", "NORMAL")
    pricer = component(arch, "pricer")
    pricer["logic"] = {"set": {"total": "unit_price / (quantity - quantity)"}}
    order = {"order_id": "A-000001", "quantity": 2, "unit_price": 5}
    pricer["examples"] = [{"in": order, "out": {"total": 10}}]
    with generated(arch, tmp_path) as (src, slice_):
        session = Session(tmp_path / "data")
        try:
            runs = [session.bench(src, slice_, simplest_message, iterations=20) for _ in range(2)]
        finally:
            session.close()
    assert [run["dead_letters"] for run in runs] == [runs[0]["warmup"] + 20] * 2


def test_a_path_well_under_its_budget_passes_before_the_cap(pricer, tmp_path):
    result = bench(pricer, tmp_path)
    assert result["dead_letters"] == 0 and result["ok"] is True
    # at the first look on a quiet machine; a look or two later on a busy one
    assert result["iterations"] < LOOKS[-1] and result["decision"] == "upper bound within the limit"
    assert result["p95_upper_bound_ms"] <= result["limit_ms"]
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["p95_upper_bound_ms"]
    assert result["rule"]["load_correction"] == "run-queue wait subtracted"


def sleeping(original):
    def transform(self, msg):
        time.sleep(SLOW_S)
        return original(self, msg)

    return transform


def computing(original):
    """Work on the CPU (the thread's own CPU time), which no correction for load takes out."""

    def transform(self, msg):
        end = time.thread_time() + SLOW_S
        while time.thread_time() < end:
            pass
        return original(self, msg)

    return transform


@pytest.mark.parametrize("slow", [sleeping, computing])
def test_logic_over_its_budget_fails_at_the_first_look(pricer, tmp_path, monkeypatch, slow):
    importable(pricer[0])
    cls = importlib.import_module(f"{SYSTEM}.components.pricer").COMPONENT
    monkeypatch.setattr(cls, "transform", slow(cls.transform))
    result = bench(pricer, tmp_path)
    assert result["ok"] is False and result["dead_letters"] == 0
    assert result["iterations"] == LOOKS[0] and result["decision"] == "lower bound over the limit"
    assert result["p95_lower_bound_ms"] > result["limit_ms"] and result["p50_ms"] >= SLOW_S * 1000


def binomial_cdf(n: int, k: int) -> Fraction:
    """P(Binomial(n, QUANTILE) <= k), exactly."""
    q = Fraction(QUANTILE).limit_denominator(1000)
    return sum((math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(k + 1)), Fraction(0))


@pytest.mark.parametrize("n", [LOOKS[0], LOOKS[1]])
def test_the_bounds_are_the_tightest_with_their_confidence(n):
    alpha = Fraction(bound_alpha(LOOKS[-1])).limit_denominator(10**6)
    lower, upper = bound_ranks(n, bound_alpha(LOOKS[-1]))
    assert upper is not None
    # X(upper) >= the p95 with probability P(B <= upper-1); one rank lower falls short
    assert binomial_cdf(n, upper - 1) >= 1 - alpha > binomial_cdf(n, upper - 2)
    # X(lower) <= the p95 with probability P(B >= lower); one rank higher falls short
    assert 1 - binomial_cdf(n, lower - 1) >= 1 - alpha > 1 - binomial_cdf(n, lower)


def test_too_few_messages_give_no_upper_bound():
    # the largest of 100 latencies is over the p95 with probability 1 - 0.95**100 = 99.4 % only
    assert bound_ranks(100, bound_alpha(LOOKS[-1]))[1] is None
    assert decide([0.1] * 100, 1.0, LOOKS[-1])[0] is None


def test_one_outlier_does_not_decide_but_a_tail_over_the_limit_does():
    limit = 1.0
    assert decide([0.1] * 199 + [50.0], limit, LOOKS[-1])[0] == "pass"
    # 15 % of messages over the limit: the p95 is over it, surely (10 % is not sure at 200)
    assert decide([0.1] * 170 + [5.0] * 30, limit, LOOKS[-1])[0] == "fail"
    assert decide([0.1] * 180 + [5.0] * 20, limit, LOOKS[-1])[0] is None
    # 5 % over: undecided at 200 messages
    assert decide([0.1] * 190 + [5.0] * 10, limit, LOOKS[-1])[0] is None


@pytest.mark.skipif(not RunQueueWait().available, reason="needs Linux's per-thread schedstat")
def test_a_thread_that_ends_keeps_its_count_and_is_read_no_more():
    import threading

    go = threading.Event()
    thread = threading.Thread(target=lambda: go.wait(10) and sum(range(200_000)))
    waits = RunQueueWait()  # opened before the thread: does not count it
    thread.start()
    later = RunQueueWait()  # counts it
    try:
        counted = len(later.files)
        assert len(waits.files) == counted - 1
        first = later.total()
        go.set()
        thread.join()
        deadline = time.monotonic() + 5  # the kernel lets go of an ended thread just after join
        while len(later.files) == counted and time.monotonic() < deadline:
            assert later.total() >= first
            time.sleep(0.001)
        assert len(later.files) == counted - 1 and later.total() >= first  # its last count stays
    finally:
        waits.close()
        later.close()


@pytest.mark.skipif(not RunQueueWait().available, reason="needs Linux's per-thread schedstat")
def test_the_run_queue_wait_is_what_a_competitor_adds_not_what_the_code_spends():
    """A process spinning on the same CPU as this one: the wall time of 60 ms of CPU work grows
    by the time this process waits for the CPU, and wall minus that wait is never under the
    CPU time the work really took."""
    affinity = os.sched_getaffinity(0)
    cpu = min(affinity)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the competitor: spins on this CPU, ends by itself
        os.sched_setaffinity(0, {cpu})
        end = time.monotonic() + 10
        while time.monotonic() < end:
            pass
        os._exit(0)
    waits = RunQueueWait()
    try:
        os.sched_setaffinity(0, {cpu})
        time.sleep(0.05)  # the competitor is running
        before, cpu_start, start = waits.total(), time.thread_time_ns(), time.perf_counter_ns()
        while time.thread_time_ns() - cpu_start < 60_000_000:
            pass
        wall, spent = time.perf_counter_ns() - start, time.thread_time_ns() - cpu_start
        waited = waits.total() - before
    finally:
        os.sched_setaffinity(0, affinity)
        waits.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert waited > 0.2 * wall  # two runnable processes on one CPU: this one waited
    assert wall - waited >= 0.95 * spent  # the correction never takes out the work itself
