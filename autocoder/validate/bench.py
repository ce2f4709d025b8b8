"""The bench tier: a micro-benchmark of one component's per-message path, kernel included.

It imports the generated component in this process and times, message by message, what the
runtime does for each: rate-limit token, input validation, logic (with retry, breaker and
timeout wrappers), output validation, metrics and emission (to no downstream, so only this
component is measured). p50 and p95 are compared with the component's budget.

The messages are timed in ROUNDS rounds and the verdict uses the round with the lowest p95:
other processes on a busy machine only ever add latency, so the best round is the estimate of
the component's own cost (as `timeit` takes the minimum), while a component that is really
over budget is over in every round. The p95 over all rounds is reported too.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.resources
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from autocoder.ir.models import ComponentIR, FieldSpecIR, SinkIR, Slice
from autocoder.validate.inprocess import environment, importable
from autocoder.validate.isolated import run_forked

WARMUP = 200
ITERATIONS = 2000
ROUNDS = 5
LIMIT_S = 600.0  # a benchmark still running after this is hung: its child is killed


@functools.cache
def budget_rules() -> dict[str, Any]:
    return yaml.safe_load(importlib.resources.files("autocoder.rules").joinpath("budgets.yaml").read_text())


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
    from autocoder_runtime import capabilities, testing  # noqa: F401 - imported once, for the children

    importable(src)
    importlib.import_module(f"{slice_.system}.models")
    return run_forked(bench_component, (src, slice_, scratch / "data", simplest), LIMIT_S)


def bench_component(
    src: Path, slice_: Slice, data_dir: Path, simplest: Simplest, iterations: int = ITERATIONS
) -> dict[str, Any]:
    """Per-message latencies of the component; returns p50/p95 (ms), dead letters and the verdict.
    A measured path that dead-letters its messages is a failure whatever its speed."""
    system_name = slice_.system
    comp = slice_.component
    importable(src)
    module = importlib.import_module(f"{system_name}.components.{comp.name}")
    from autocoder_runtime.testing import release_databases

    with environment(DATA_DIR=str(data_dir)):
        try:
            latencies, dead = asyncio.run(_measure(module.COMPONENT, slice_, simplest, iterations))
        finally:
            release_databases()
    size = max(1, len(latencies) // ROUNDS)
    rounds = [latencies[i : i + size] for i in range(0, len(latencies), size)]
    best = min(rounds, key=_p95)
    p50, p95 = statistics.median(best), _p95(best)
    budget = float(comp.budget.p95_ms)
    tolerance = float(budget_rules()["tolerance"])
    return {
        "component": comp.name,
        "kind": comp.kind,
        "iterations": len(latencies),
        "dead_letters": dead,
        "p50_ms": round(p50, 4),
        "p95_ms": round(p95, 4),
        "p95_all_rounds_ms": round(_p95(latencies), 4),
        "rounds": len(rounds),
        "budget_p95_ms": budget,
        "tolerance": tolerance,
        "limit_ms": round(budget * (1 + tolerance), 4),
        "ok": p95 <= budget * (1 + tolerance) and dead == 0,
    }


def _p95(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


async def _measure(cls: Any, slice_: Slice, simplest: Simplest, iterations: int) -> tuple[list[float], int]:
    from autocoder_runtime.capabilities import TokenBucket
    from autocoder_runtime.testing import harness

    comp = slice_.component
    async with harness(cls) as component:
        component.bucket = TokenBucket(10**9, 10**9)  # the kernel's cost, never its throttling
        if isinstance(comp, SinkIR) and comp.config.target == "webhook":
            import httpx

            # the component's own path, not the network: the webhook answers 200 in process
            await component.client.aclose()
            component.client = httpx.AsyncClient(
                transport=httpx.MockTransport(lambda request: httpx.Response(200))
            )
        step = _step(component, comp, slice_, simplest)
        for _ in range(WARMUP):
            await step()
        latencies = []
        for _ in range(iterations):
            start = time.perf_counter_ns()
            await step()
            latencies.append((time.perf_counter_ns() - start) / 1e6)
        dead = await component.system.database().dead_letter_count()
    return latencies, dead


def _step(component: Any, comp: ComponentIR, slice_: Slice, simplest: Simplest) -> Any:
    """One message through the kernel path of this kind of component."""
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

        return step
    port, schema = sorted(comp.outputs.items())[0]
    if comp.kind == "source":
        seq = iter(range(1, 10**9))

        async def generate() -> None:
            component.bucket.try_acquire()
            message = validate(component.outputs[port], component.generate(next(seq), time.time()))
            await component.system.accept(component.name, port, message, "bench")

        return generate
    messages = sample_messages(slice_, port, schema, simplest)

    async def ingress() -> None:  # an api_endpoint: validate the body, commit it to the inbox
        if not cycle:
            cycle.extend(messages)
        component.bucket.try_acquire()
        message = validate(component.outputs[port], dict(cycle.pop()))
        await component.system.accept(component.name, port, message, "bench")

    return ingress
