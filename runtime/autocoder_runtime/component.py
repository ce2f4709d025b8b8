"""The kernel every component runs a message through, and its supervised consumers.

A message arrives on an input queue (bounded: a full queue makes its producer wait, which is
back-pressure), is validated against the port's schema, goes through the kind's logic with the
opt-in retry, circuit breaker and timeout, and every output is validated before any is sent. A
message the logic cannot handle goes to the dead letters; none is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from autocoder_runtime.capabilities import CircuitBreaker, RetryPolicy, TokenBucket, is_transient
from autocoder_runtime.database import DatabaseUnavailable
from autocoder_runtime.logs import log
from autocoder_runtime.messages import Envelope, Message, OutputInvalid, Rejected, validate
from autocoder_runtime.metrics import CIRCUIT_STATES, Metrics, Series
from autocoder_runtime.settings import queue_size
from autocoder_runtime.spec import ComponentSpec
from autocoder_runtime.telemetry import NO_SPAN, Telemetry

if TYPE_CHECKING:
    from autocoder_runtime.system import System

Outputs = list[tuple[str, Message]]
LOGIC_ERRORS = (ArithmeticError, ValueError, TypeError, KeyError, IndexError)
RESTART_DELAY_S = (0.05, 5.0)  # a failed consumer restarts after a backoff between these


DEFAULT_DATA_DIR = "data"
_NO_SPAN = contextlib.nullcontext(NO_SPAN)  # reusable: it holds no state of its own


def data_dir() -> Path:
    """Where the system keeps its SQLite database and files: $DATA_DIR, or ./data."""
    return Path(os.environ.get("DATA_DIR", DEFAULT_DATA_DIR))


def run_logic(function: Callable[..., Any], *args: Any) -> Any:
    """Call compiled logic; its arithmetic and value errors become a rejection with the reason."""
    try:
        return function(*args)
    except LOGIC_ERRORS as exc:
        raise Rejected(f"logic failed: {type(exc).__name__}: {exc}") from None


def single(ports: dict[str, Any]) -> str:
    (port,) = ports
    return port


class Component:
    """Base of every generated component.

    A generated subclass sets `inputs`/`outputs` (port -> pydantic model) and `spec`, and the
    logic method its kind calls (`transform`, `where`, `route`, ...). The kind's `aprocess`
    returns the (output port, message) pairs to emit.
    """

    kind: ClassVar[str] = ""
    inputs: ClassVar[dict[str, type[BaseModel]]] = {}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {}
    spec: ClassVar[ComponentSpec] = ComponentSpec()

    def __init__(self, name: str, system: System) -> None:
        self.name = name
        self.system = system
        caps = self.spec.capabilities
        limit = caps.rate_limit
        self.bucket = TokenBucket(limit.rate, limit.burst) if limit else TokenBucket(1000.0, 1000)
        self.retry = RetryPolicy(caps.retry)
        self.timeout = caps.timeout.seconds if caps.timeout else None
        self.breaker = CircuitBreaker(caps.circuit_breaker) if caps.circuit_breaker else None
        self.queues: dict[str, asyncio.Queue[Envelope]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.failing: set[str] = set()  # consumers waiting to be restarted
        self._series: Series | None = None
        self._series_of: Metrics | None = None  # the registry `_series` is of

    # -- lifecycle

    async def start(self) -> None:
        self.queues = {port: asyncio.Queue(maxsize=queue_size()) for port in self.inputs}
        for port in self.inputs:
            for worker in range(self.spec.capabilities.concurrency):
                name = f"{self.name}.{port}#{worker}"
                self.spawn(name, functools.partial(self._consume, port))

    def spawn(self, name: str, run: Callable[[], Any]) -> None:
        """Run a long-lived task under supervision: if it fails it is logged, marked failing
        (readiness names it) and restarted after a growing delay."""
        self.tasks.append(asyncio.create_task(self._supervise(name, run), name=name))

    async def _supervise(self, name: str, run: Callable[[], Any]) -> None:
        failures = 0
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - supervision: log, wait, restart
                failures += 1
                self.failing.add(name)
                self.series().consumer_up.set(0)
                delay = min(RESTART_DELAY_S[0] * 2**failures, RESTART_DELAY_S[1])
                log(
                    logging.ERROR,
                    "consumer failed",
                    component=self.name,
                    consumer=name,
                    error=f"{type(exc).__name__}: {exc}",
                    restart_in_s=round(delay, 3),
                )
                await asyncio.sleep(delay)
                self.failing.discard(name)
                if not self.failing:
                    self.series().consumer_up.set(1)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # noqa: BLE001 - stopping: report and go on
                log(logging.ERROR, "task failed while stopping", component=self.name, error=repr(exc))
        self.tasks.clear()

    async def close(self) -> None:
        """Release what `open` took (files, clients), after the consumers have stopped."""

    async def open(self) -> None:
        """Take what the component needs (files, clients) before its consumers start."""

    def queued(self) -> int:
        return sum(q.qsize() for q in self.queues.values())

    # -- the kernel path

    def series(self) -> Series:
        """This component's labelled metric series, looked up once per metrics registry (a
        test's reused system makes its registry anew between runs; a running system never)."""
        metrics = self.system.metrics
        if self._series_of is not metrics:
            self._series = metrics.of(self.name)
            self._series_of = metrics
        assert self._series is not None
        return self._series

    async def _consume(self, port: str) -> None:
        queue = self.queues[port]
        while True:
            envelope = await queue.get()
            self.series().queue_depth.set(self.queued())
            try:
                await self.bucket.acquire()
                await self.handle(port, envelope)
            except BaseException:
                if envelope.delivery is not None:
                    envelope.delivery.fail()  # left in the inbox: delivered again later
                raise
            if envelope.delivery is not None:
                envelope.delivery.finish()
            # a turn for everything else on the loop (the server, the dispatcher, the other
            # consumers) after each message, even when nothing in it had to wait: a full input
            # queue and a downstream queue with room would otherwise be worked off in one go
            await asyncio.sleep(0)

    async def handle(self, port: str, envelope: Envelope) -> None:
        """Validate, process (with retry / breaker / timeout), validate every output, emit.
        Failures go to the dead letters; only a failing dead-letter write escapes, and the
        system's database being unreachable (the message is fine: its inbox entry is
        delivered again after its lease)."""
        series = self.series()
        series.received.inc()
        in_flight = series.in_flight
        in_flight.inc()
        start = time.perf_counter()
        telemetry = self.system.telemetry
        # the no-export telemetry's span is always NO_SPAN: its context manager (a generator
        # made and run to its end per message) is skipped, nothing else
        handling = (
            _NO_SPAN
            if type(telemetry).handling is Telemetry.handling
            else telemetry.handling(self.name, port, envelope.trace_id, envelope.span_id)
        )
        with handling as span:
            try:
                model = self.inputs.get(port)
                if model is None:
                    raise Rejected(f"no input port {port!r}")
                message = validate(model, envelope.payload)
                results = await self._guarded(port, message)
                outputs = [(p, validate(self.outputs[p], out, OutputInvalid)) for p, out in results]
                if not outputs and self.outputs:
                    series.dropped.inc()
                span.outcome("processed" if outputs or not self.outputs else "dropped")
                if outputs:
                    parent = Envelope(envelope.payload, envelope.trace_id, envelope.delivery, span.span_id)
                    if len(outputs) == 1:  # no task of its own to wait for
                        await self.emit(outputs[0][0], outputs[0][1], parent)
                    else:
                        await asyncio.gather(*(self.emit(p, out, parent) for p, out in outputs))
            except (asyncio.CancelledError, DatabaseUnavailable):
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is recorded, never dropped
                span.outcome("dead_letter")
                span.failed(f"{type(exc).__name__}: {exc}")
                await self.system.dead_letter(self.name, port, exc, envelope)
            finally:
                in_flight.dec()
                series.latency.observe(time.perf_counter() - start)

    async def _guarded(self, port: str, message: Message) -> Outputs:
        attempt = 0
        while True:
            attempt += 1
            if self.breaker is not None:
                await self.breaker.wait_closed()  # an open circuit holds messages back
            try:
                result = await self._call(port, message)
            except Rejected:
                raise
            except Exception as exc:
                if self.breaker is not None and is_transient(exc):
                    self.breaker.failure()
                    self._circuit_metric()
                if not self.retry.should_retry(exc, attempt):
                    raise
                self.series().retries.inc()
                await asyncio.sleep(self.retry.delay(attempt, exc))
                continue
            if self.breaker is not None:
                self.breaker.success()
                self._circuit_metric()
            return result

    def _circuit_metric(self) -> None:
        assert self.breaker is not None
        self.series().circuit.set(CIRCUIT_STATES[self.breaker.state])

    async def _call(self, port: str, message: Message) -> Outputs:
        if self.timeout is None:
            return list(await self.aprocess(port, message))
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
        # arrives as the call completes, and the stopping consumer would carry on
        async with asyncio.timeout(self.timeout):
            return list(await self.aprocess(port, message))

    async def aprocess(self, port: str, message: Message) -> Outputs:
        return self.process(port, message)

    def process(self, port: str, message: Message) -> Outputs:
        raise NotImplementedError(f"{type(self).__name__} does not process messages")

    async def emit(self, port: str, message: Message, parent: Envelope) -> None:
        """Deliver to every bound input at once: each target's queue bound applies on its own,
        so a slow sibling holds this message back only as far as its own queue is full."""
        self.series().emitted.inc()
        targets = self.system.targets(self.name, port, message)
        if parent.delivery is not None:
            parent.delivery.add(len(targets))
        if len(targets) == 1:  # no task of its own to wait for
            target, target_port = targets[0]
            await target.queues[target_port].put(
                Envelope(dict(message), parent.trace_id, parent.delivery, parent.span_id)
            )
        elif targets:
            await asyncio.gather(
                *(
                    target.queues[target_port].put(
                        Envelope(dict(message), parent.trace_id, parent.delivery, parent.span_id)
                    )
                    for target, target_port in targets
                )
            )
