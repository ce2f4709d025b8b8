"""The bench tier: a micro-benchmark of one component's per-message path, kernel included.

It imports the generated component in this process and times, message by message, what the
runtime does for each: rate-limit token, input validation, logic (with retry, breaker and
timeout wrappers), output validation, metrics and emission (to no downstream, so only this
component is measured). The verdict is whether the p95 of that latency is within the
component's budget plus its tolerance (the limit).

How many messages: a sequential test on order statistics (distribution-free: it assumes only
that the messages' latencies are independent draws from one distribution). After a short
warm-up the rule looks at the sample at LOOKS messages. At a look with n messages, the k-th
smallest latency is an upper confidence bound of the true p95 when P(Binomial(n, 0.95) < k) is
at least the look's confidence, and the j-th a lower bound when P(Binomial(n, 0.95) >= j) is.
The rule stops with a pass once the upper bound is within the limit, with a failure once the
lower bound is over it. Each of the 2 x len(LOOKS) bounds gets an equal share of the error
(Bonferroni), so over all looks a verdict a bound reached is wrong with probability at most
1 - CONFIDENCE. A component whose p95 sits so close to the limit that ITERATIONS messages do
not settle it is judged by its sample p95, as before. A fast component is settled at the
first look (200 messages, where 2,000 were timed before), a clearly slow one there too.

Less sensitive to load: on Linux each message's latency is its wall time less the time the
process's threads spent runnable but waiting for a CPU (the scheduler's run-queue wait,
/proc/self/task/*/schedstat): what other processes on a busy machine add, and nothing the
component does itself. (The threads seldom wait at the same time, which would count a wait
twice: while the database's thread commits, the event loop's thread is blocked on it.) Time
the component computes, sleeps or waits on I/O still counts, so slow code fails however
loaded the machine. Both the wall p95 and the corrected one are reported; without schedstat
the wall time is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import importlib.resources
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autocoder.ir.models import ComponentIR, FieldSpecIR, SinkIR, Slice
from autocoder.validate.budgets import budget_rules
from autocoder.validate.inprocess import environment, importable
from autocoder.validate.isolated import run_forked

QUANTILE = 0.95
CONFIDENCE = 0.99  # of the verdict, over all looks and both directions
LOOKS = (200, 400, 800, 1600, 2000)  # messages timed when the rule looks; the last is the cap
ITERATIONS = LOOKS[-1]
# one-time costs (first imports, statement caches, the database's threads, the interpreter
# specialising the hot path's bytecode after its first few calls) are paid in the warm-up:
# every sample message this many times, and at least WARMUP_MIN messages in all
WARMUP_PASSES = 3
WARMUP_MIN = 50
LIMIT_S = 600.0  # a benchmark still running after this is hung: its child is killed


# fields of a schema -> its simplest valid message (codegen.strategies.simplest_message, which
# the tasks pass in: validation does not import the generator)
Simplest = Callable[[dict[str, FieldSpecIR]], dict[str, Any]]


def sample_messages(slice_: Slice, port: str, schema: str, simplest: Simplest) -> list[dict[str, Any]]:
    """Inputs to time: the component's accepted examples, else the simplest valid message of
    its schema (found by hypothesis once per schema content, then cached on disk)."""
    examples = [e.input for e in slice_.component.examples if not e.rejected and (e.port or port) == port]
    if examples:
        return examples
    return [simplest(slice_.schemas[schema].fields)]


def bench_isolated(src: Path, slice_: Slice, scratch: Path, simplest: Simplest) -> dict[str, Any]:
    """`bench_component` in a child forked from this process (validate/isolated.py: a crash or
    hang is the task's alone); its database under `scratch`. ChildFailed says what went wrong."""
    _prepare(src, slice_)
    return run_forked(bench_component, (src, slice_, scratch / "data", simplest), LIMIT_S)


def _prepare(src: Path, slice_: Slice) -> None:
    """In the build process, once: what every child would otherwise import or compute anew."""
    from autocoder_runtime import capabilities, testing  # noqa: F401 - imported once, for the children

    importable(src)
    importlib.import_module(f"{slice_.system}.models")
    # the budgets (YAML) and the bounds' ranks
    budget_rules()
    for n in looks(ITERATIONS):
        bound_ranks(n, bound_alpha(ITERATIONS))


def bench_batch(src: Path, slices: list[Slice], scratch: Path, simplest: Simplest) -> dict[str, Any]:
    """In ONE forked child: `bench_component` of each slice's component, one after the other,
    in one `Session` (each component on a database emptied for it), with the same rule,
    warm-up and load correction as a run on its own. The results of the components it
    completed (one that raised is left out: its own task then runs it alone and fails with the
    error). The child is forked once for all of them: the fork of the build process
    (~25-40 ms) was most of a fast component's task. The number of messages, warm-up and rule
    are unchanged (bench_component)."""
    _prepare(src, slices[0])
    return run_forked(_bench_each, (src, slices, scratch, simplest), LIMIT_S)


def _bench_each(src: Path, slices: list[Slice], scratch: Path, simplest: Simplest) -> dict[str, Any]:
    """The child of `bench_batch`: each component's time limit is its own (a heartbeat each).
    The components share one `Session` (an event loop and a database); one that raised leaves
    the session behind and the next ones get a new one, so a failure cannot reach them."""
    from autocoder.validate.isolated import heartbeat

    results: dict[str, Any] = {}
    session = Session(scratch / "data", fresh_heap=True)
    try:
        for slice_ in slices:
            heartbeat(LIMIT_S)
            try:
                results[slice_.component.name] = session.bench(src, slice_, simplest)
            except Exception:  # noqa: BLE001 - its own task runs it alone and fails with the error
                session.close()
                session = Session(scratch / "data", fresh_heap=True)
    finally:
        session.close()
    return results


def bench_component(
    src: Path, slice_: Slice, data_dir: Path, simplest: Simplest, iterations: int = ITERATIONS
) -> dict[str, Any]:
    """Per-message latencies of the component until the sequential rule settles its p95 (at most
    `iterations` messages); returns p50/p95 (ms), the bounds, dead letters and the verdict.
    A measured path that dead-letters its messages is a failure whatever its speed."""
    session = Session(data_dir)
    try:
        return session.bench(src, slice_, simplest, iterations)
    finally:
        session.close()


class Session:
    """What the components measured one after the other in one process share: the event loop
    and the SQLite database under `data_dir` (with its writer and reader threads). Making both
    anew for each component (asyncio.run, a new database file) cost ~6 ms of CPU a component,
    more than the measured messages of a fast one.

    Each component still starts where a new loop and a new database would have it start: a new
    System and component (testing.harness), the database emptied of every row with
    AUTOINCREMENT counters back at 1 (testing.empty_database) and its write-ahead log
    checkpointed and truncated (the state of a new file but for its free pages), a copy of the
    caller's context, no task of the previous component left on the loop (cancelled, as
    asyncio.run does), and with `fresh_heap` (in a forked child) the heap collected and frozen."""

    def __init__(self, data_dir: Path, fresh_heap: bool = False) -> None:
        self.data_dir = data_dir
        self.fresh_heap = fresh_heap
        self.runner = asyncio.Runner()

    def bench(
        self, src: Path, slice_: Slice, simplest: Simplest, iterations: int = ITERATIONS
    ) -> dict[str, Any]:
        """`bench_component` of this slice's component, on this session's loop and database."""
        import contextvars
        import gc

        comp = slice_.component
        importable(src)
        module = importlib.import_module(f"{slice_.system}.components.{comp.name}")
        budget = float(comp.budget.p95_ms)
        tolerance = float(budget_rules()["tolerance"])
        limit = budget * (1 + tolerance)
        if self.fresh_heap:
            # the heap as a freshly forked child has it: what the earlier components left is
            # collected, and what survives is frozen (run_forked froze the parent's objects),
            # so no collection of it lands in this component's latencies or costs a full walk
            gc.collect()
            gc.freeze()
        with environment(DATA_DIR=str(self.data_dir)):
            measured = _settled(_measure(module.COMPONENT, slice_, simplest, iterations, limit))
            run = self.runner.run(measured, context=contextvars.copy_context())
        return {
            "component": comp.name,
            "kind": comp.kind,
            **run,
            "budget_p95_ms": budget,
            "tolerance": tolerance,
            "limit_ms": round(limit, 4),
            "ok": run["ok"],
        }

    def close(self) -> None:
        """The loop closed (its executor's threads joined) and the database with its threads."""
        from autocoder_runtime.testing import release_databases

        try:
            self.runner.close()
        finally:
            release_databases()


async def _settled(coroutine: Any) -> Any:
    """`coroutine`'s result, once every task it left on the loop is cancelled and done (what
    asyncio.run does before it closes its loop), so none runs into the next component's run."""
    try:
        return await coroutine
    finally:
        current = asyncio.current_task()
        left = [task for task in asyncio.all_tasks() if task is not current]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)


def _truncate_log(path: str) -> None:
    """Checkpoint the SQLite database at `path` and truncate its write-ahead log (what an
    emptied database wrote there is gone, as in a new file). Nothing else is active on it now."""
    import sqlite3

    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        connection.close()


def looks(cap: int) -> list[int]:
    """The sample sizes at which the rule looks, for a cap of `cap` messages."""
    return [n for n in LOOKS if n < cap] + [cap]


def bound_alpha(cap: int) -> float:
    """The error allowed to each one-sided bound at each look (Bonferroni over all of them)."""
    return (1 - CONFIDENCE) / (2 * len(looks(cap)))


@functools.cache
def bound_ranks(n: int, alpha: float) -> tuple[int, int | None]:
    """1-based ranks of the order statistics of n latencies that bound their QUANTILE from below
    and from above, each with probability at least 1 - alpha; the upper is None when n is too
    few for one (the largest of n is an upper bound only with probability 1 - QUANTILE**n).

    X(k) < the quantile exactly when at least k latencies are under it, a Binomial(n, QUANTILE)
    count (at most that with ties, so the bounds stay conservative): X(k) is an upper bound with
    probability P(B <= k-1), X(j) a lower bound with probability P(B >= j)."""
    cdf = _binomial_cdf(n, QUANTILE)
    upper = next((k for k in range(1, n + 1) if cdf[k - 1] >= 1 - alpha), None)
    lower = next(j for j in range(n, 0, -1) if j == 1 or cdf[j - 1] <= alpha)
    return lower, upper


@functools.cache
def _binomial_cdf(n: int, p: float) -> list[float]:
    """P(Binomial(n, p) <= i) for i in 0..n, summed in log space (n! overflows a float)."""
    log_c, log_p, log_q = math.lgamma(n + 1), math.log(p), math.log1p(-p)
    total, cdf = 0.0, []
    for i in range(n + 1):
        log_pmf = log_c - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        total += math.exp(log_pmf)
        cdf.append(min(1.0, total))
    return cdf


def decide(latencies: list[float], limit: float, cap: int) -> tuple[str | None, float, float | None]:
    """At a look: ("pass" | "fail" | None to go on, lower bound, upper bound) of the p95 (ms)."""
    ordered = sorted(latencies)
    lower_rank, upper_rank = bound_ranks(len(ordered), bound_alpha(cap))
    lower = ordered[lower_rank - 1]
    upper = None if upper_rank is None else ordered[upper_rank - 1]
    if upper is not None and upper <= limit:
        return "pass", lower, upper
    if lower > limit:
        return "fail", lower, upper
    return None, lower, upper


def _p95(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(round(QUANTILE * (len(ordered) - 1))))]


class RunQueueWait:
    """Nanoseconds this process's threads have spent runnable but waiting for a CPU, from Linux's
    per-thread schedstat (its second field). Threads started after it opened are not counted,
    which only ever leaves more of a latency in. `available` is False off Linux.

    `total` is read after every measured message: one pread per thread and little else (a
    thread that has ended keeps its last count and is read no more)."""

    def __init__(self) -> None:
        self.files: list[int] = []
        self.last: list[int] = []
        self.ended = 0  # the last counts of the threads that have ended
        with contextlib.suppress(OSError):
            for tid in sorted(os.listdir("/proc/self/task")):
                fd = os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY)
                self.files.append(fd)
                self.last.append(0)
        self.total()

    @property
    def available(self) -> bool:
        return bool(self.files)

    def total(self) -> int:
        last, pread = self.last, os.pread
        for i, fd in enumerate(self.files):
            try:
                last[i] = int(pread(fd, 128, 0).split(None, 2)[1])
            except (OSError, ValueError, IndexError):  # its thread has ended: its count stays
                self._forget(i)
                return self.total()
        return sum(last) + self.ended

    def _forget(self, index: int) -> None:
        os.close(self.files.pop(index))
        self.ended += self.last.pop(index)

    def close(self) -> None:
        for fd in self.files:
            os.close(fd)
        self.files = []


async def _measure(cls: Any, slice_: Slice, simplest: Simplest, cap: int, limit: float) -> dict[str, Any]:
    from autocoder_runtime.capabilities import TokenBucket
    from autocoder_runtime.testing import harness

    comp = slice_.component
    async with harness(cls) as component:
        _truncate_log(component.system.database().dialect.target)
        component.bucket = TokenBucket(10**9, 10**9)  # the kernel's cost, never its throttling
        if isinstance(comp, SinkIR) and comp.config.target == "webhook":
            import httpx

            # the component's own path, not the network: the webhook answers 200 in process
            await component.client.aclose()
            component.client = httpx.AsyncClient(
                transport=httpx.MockTransport(lambda request: httpx.Response(200))
            )
        step, distinct = _step(component, comp, slice_, simplest)
        warmup = max(WARMUP_MIN, WARMUP_PASSES * distinct)
        for _ in range(warmup):
            await step()
        wall: list[float] = []
        corrected: list[float] = []
        waits = RunQueueWait()
        try:
            for look in looks(cap):
                # the count read after a message is the count before the next one: between
                # the two reads there are only two appends (well under a microsecond), so a
                # message's window is what it was with a read of its own, at half the reads
                waited = waits.total()
                while len(wall) < look:
                    start = time.perf_counter_ns()
                    await step()
                    elapsed = time.perf_counter_ns() - start
                    before, waited = waited, waits.total()
                    wall.append(elapsed / 1e6)
                    corrected.append(max(0, elapsed - (waited - before)) / 1e6)
                dead = await component.system.database().dead_letter_count()
                verdict, lower, upper = decide(corrected, limit, cap)
                if dead or verdict:
                    break
        finally:
            corrected_for_load = waits.available
            waits.close()
    p95 = _p95(corrected)
    if dead:
        decision, ok = "dead letters", False
    elif verdict == "pass":
        decision, ok = "upper bound within the limit", True
    elif verdict == "fail":
        decision, ok = "lower bound over the limit", False
    else:
        decision, ok = "sample p95 at the cap", p95 <= limit
    return {
        "iterations": len(corrected),
        "warmup": warmup,
        "dead_letters": dead,
        "p50_ms": round(statistics.median(corrected), 4),
        "p95_ms": round(p95, 4),
        "p95_lower_bound_ms": round(lower, 4),
        "p95_upper_bound_ms": None if upper is None else round(upper, 4),
        "wall_p50_ms": round(statistics.median(wall), 4),
        "wall_p95_ms": round(_p95(wall), 4),
        "run_queue_wait_ms": round(sum(wall) - sum(corrected), 3),
        "decision": decision,
        "rule": {
            "quantile": QUANTILE,
            "confidence": CONFIDENCE,
            "bound_confidence": round(1 - bound_alpha(cap), 6),
            "looks": looks(cap),
            "min_samples": looks(cap)[0],
            "max_samples": cap,
            "load_correction": "run-queue wait subtracted" if corrected_for_load else "none",
        },
        "ok": ok,
    }


def _step(component: Any, comp: ComponentIR, slice_: Slice, simplest: Simplest) -> tuple[Any, int]:
    """One message through the kernel path of this kind of component, and how many different
    messages it cycles through."""
    from autocoder_runtime.messages import Envelope, validate

    cycle: list[Any] = []
    if comp.inputs:
        port, schema = sorted(comp.inputs.items())[0]
        messages = sample_messages(slice_, port, schema, simplest)

        async def step() -> None:
            if not cycle:
                cycle.extend(messages)
            component.bucket.try_acquire()
            await component.handle(port, Envelope(dict(cycle.pop())))

        return step, len(messages)
    port, schema = sorted(comp.outputs.items())[0]
    if comp.kind == "source":
        seq = iter(range(1, 10**9))

        async def generate() -> None:
            component.bucket.try_acquire()
            message = validate(component.outputs[port], component.generate(next(seq), time.time()))
            await component.system.accept(component.name, port, message, "bench")

        return generate, 1
    messages = sample_messages(slice_, port, schema, simplest)

    async def ingress() -> None:  # an api_endpoint: validate the body, commit it to the inbox
        if not cycle:
            cycle.extend(messages)
        component.bucket.try_acquire()
        message = validate(component.outputs[port], dict(cycle.pop()))
        await component.system.accept(component.name, port, message, "bench")

    return ingress, len(messages)
