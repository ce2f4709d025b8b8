"""A running system: its components, wiring, database and the delivery of inbox entries.

Delivery contract. A message the ingress accepts is in the inbox (committed) before the 202.
The dispatcher claims inbox entries (a lease; on PostgreSQL with SKIP LOCKED, so replicas share
one inbox) and feeds them to the bound components. Each entry is acknowledged, that is deleted
from the inbox, only when every message descending from it has ended: stored, sent, filtered
out, folded into a persisted window, or dead-lettered. An entry whose processing was cut short
(SIGKILL, a SIGTERM deadline, a crashed consumer) is still in the inbox and is delivered again:
at least once, which stores absorb by writing idempotently by key.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping

from autocoder_runtime import settings
from autocoder_runtime.component import Component, data_dir, run_logic
from autocoder_runtime.database import Database, InboxItem, InboxRow, open_database
from autocoder_runtime.logs import log
from autocoder_runtime.messages import Envelope, Message, safe_json
from autocoder_runtime.metrics import Metrics
from autocoder_runtime.spec import SystemSpec
from autocoder_runtime.telemetry import Telemetry, from_environment

Condition = Callable[[Message], bool]
MAX_DELIVERIES = 10  # an entry delivered this often without completing is dead-lettered
# how often the dispatcher looks for entries other processes added (a `replay`, another
# replica's lapsed leases): every 0.2 s after anything happened here, then less and less often
# while nothing does, down to once a second. Each look is a write transaction: at 0.2 s an
# idle server spent ~4 ms of CPU a second on them (a build's path-test server idles until the
# build ends); what this process accepts or acknowledges wakes the dispatcher at once.
POLL_S = (0.2, 1.0)
DB_RETRY_S = (0.1, 5.0)  # after a failed inbox claim, ack or renewal, retry after a backoff between these


def backoff(failures: int) -> float:
    return min(DB_RETRY_S[0] * 2.0 ** min(failures, 16), DB_RETRY_S[1])


class Delivery:
    """One claimed inbox entry: how many of its messages are still in flight."""

    def __init__(self, row: InboxRow, done: Callable[[Delivery], None]) -> None:
        self.row = row
        self.pending = 0
        self.failed = False
        self._done = done

    def add(self, count: int) -> None:
        self.pending += count

    def finish(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self._done(self)

    def fail(self) -> None:
        self.failed = True
        self.finish()


class ComponentModules(Mapping[str, type[Component]]):
    """A generated system's component classes by name, each module imported when its class is
    first asked for: a system serving some of its components (SERVE_ONLY) imports only theirs,
    not the hundreds of a large system's."""

    def __init__(self, package: str, names: Iterable[str]) -> None:
        self._package = package
        self._names = tuple(names)
        self._loaded: dict[str, type[Component]] = {}

    def __getitem__(self, name: str) -> type[Component]:
        if name not in self._names:
            raise KeyError(name)
        found = self._loaded.get(name)
        if found is None:
            module = importlib.import_module(f"{self._package}.{name}")
            found = getattr(module, "COMPONENT", None)
            if not (isinstance(found, type) and issubclass(found, Component)):
                raise TypeError(f"{self._package}.{name}.COMPONENT is not a Component class")
            self._loaded[name] = found
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class System:
    """All components of one system, wired; see the module docstring for what it promises."""

    def __init__(
        self,
        spec: SystemSpec,
        components: Mapping[str, type[Component]],
        conditions: dict[str, Condition] | None = None,
    ) -> None:
        only = settings.serve_only()
        if only is not None:
            unknown = sorted(only - set(components))
            if unknown:
                raise settings.ConfigError(
                    f"SERVE_ONLY names {', '.join(map(repr, unknown))}, not a component of {spec.name}; "
                    f"fix: name only its components ({', '.join(sorted(components)[:5])}, ...)"
                )
            spec = spec.only(only)
        self.spec = spec
        self.name = spec.name
        self.metrics = Metrics(spec.name)
        self.components: dict[str, Component] = {}
        for name in spec.order or sorted(only if only is not None else components):
            self.components[name] = components[name](name, self)
            self.metrics.touch(name)
        conditions = conditions or {}
        self.routes: dict[tuple[str, str], list[tuple[str, str, Condition | None]]] = {}
        for b in spec.bindings:
            condition = conditions[b.condition] if b.condition else None
            self.routes.setdefault((b.source, b.port), []).append((b.target, b.target_port, condition))
        self.db: Database | None = None
        self.owner = uuid.uuid4().hex
        self.deliveries: dict[int, Delivery] = {}
        self.claimed: set[int] = set()  # claimed, not yet handed to a component
        self.acks: list[int] = []
        self.backlog = 0
        self.ready = False
        self.accepting = False
        self.tasks: list[asyncio.Task[None]] = []
        self.inbox_limit = settings.inbox_limit()
        self.max_in_flight = settings.max_in_flight()
        self.lease_s = settings.inbox_lease_s()
        self.db_error: str | None = None  # the dispatcher's last database failure, until it succeeds
        self.telemetry = Telemetry()  # OTLP export, from the environment at start
        self.wake = asyncio.Event()
        self.acked = asyncio.Event()
        self.ack_wanted = asyncio.Event()

    # ----------------------------------------------------------------- wiring

    def targets(self, source: str, port: str, message: Message) -> list[tuple[Component, str]]:
        """The inputs a message on `source.port` goes to (conditions evaluated on it)."""
        return [
            (self.components[target], target_port)
            for target, target_port, condition in self.routes.get((source, port), [])
            if condition is None or run_logic(condition, message)
        ]

    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError("the system is not started")
        return self.db

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self.wake = asyncio.Event()
        self.acked = asyncio.Event()
        self.ack_wanted = asyncio.Event()
        # first: an OTLP endpoint without the exporter installed stops the start right here
        self.telemetry = from_environment(self.name, self.spec.version)
        if self.db is None:  # else opened by the CLI before the server started (cli._serve_opened)
            dsn = os.environ.get("DATABASE_URL")
            self.db = await asyncio.to_thread(open_database, self.spec.backend, self.name, data_dir(), dsn)
        try:
            if self.spec.backend == "sqlite":
                await self.db.inbox_release(None)  # one replica: whatever was claimed is ours to redo
            self.backlog = await self.db.inbox_count()
            for component in self.components.values():
                await component.open()
            for component in self.components.values():
                await component.start()
        except BaseException:
            await self._abandon_start()
            raise
        self.accepting = True
        self.tasks = [
            asyncio.create_task(self._dispatch(), name="dispatch"),
            asyncio.create_task(self._acknowledge(), name="acknowledge"),
            asyncio.create_task(self._renew_leases(), name="leases"),
        ]
        self.ready = True
        log(
            logging.INFO,
            "started",
            system=self.name,
            components=len(self.components),
            backend=self.spec.backend,
            inbox=self.backlog,
        )

    async def _abandon_start(self) -> None:
        """A start that failed part-way (a component could not open): stop and close what was
        started, and the database, so nothing (threads, files, connections) is left behind."""
        for component in self.components.values():
            with contextlib.suppress(Exception):
                await component.stop()
            with contextlib.suppress(Exception):
                await component.close()
        db, self.db = self.db, None
        if db is not None:
            await asyncio.to_thread(db.close)
        await self._stop_telemetry()

    async def _stop_telemetry(self) -> None:
        """Flush the spans still buffered (bounded by the exporter's timeout), then no export."""
        telemetry, self.telemetry = self.telemetry, Telemetry()
        await asyncio.to_thread(telemetry.shutdown)

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """SIGTERM: stop accepting, claim what was accepted until now (one last round) and
        nothing after, let what is in flight finish until the deadline, then stop; whatever did
        not finish stays in the inbox for the next start."""
        self.accepting = False
        self.ready = False
        deadline = time.monotonic() + drain_timeout_s
        for task in self.tasks[:1]:  # the dispatcher: a last round of claims, then it ends
            self.wake.set()  # (else what was accepted just now would wait for the next start)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout_s):
                    await asyncio.shield(task)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self.deliveries and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):  # not wait_for: see _dispatch
                    await self.acked.wait()
            self.acked.clear()
        unfinished = len(self.deliveries)
        for component in self.components.values():
            await component.stop()
        for component in self.components.values():
            await component.close()
        for task in self.tasks[1:]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []
        db = self.database()
        await self._flush_acks()
        # what is still here did not finish (queued when its consumer stopped): it goes back to
        # the inbox, and a later start of this System must deliver it, not take it as on its way
        self.deliveries.clear()
        await db.inbox_release(self.owner)
        left = await db.inbox_count()
        await asyncio.to_thread(db.close)
        self.db = None
        await self._stop_telemetry()
        log(logging.INFO, "stopped", system=self.name, undrained=left, in_flight_cut=unfinished)

    def not_ready(self) -> list[str]:
        """Why the system is not ready: not started, or consumers waiting to restart."""
        reasons = [] if self.ready else ["not started or shutting down"]
        if self.db_error is not None:
            reasons.append(f"database unavailable: {self.db_error}")
        for component in self.components.values():
            reasons += [f"consumer {name} failed and is restarting" for name in sorted(component.failing)]
        return reasons

    # ----------------------------------------------------------------- accepting

    def added(self, count: int) -> None:
        """Entries went into the inbox by another way than `accept` (a closed window)."""
        self.backlog += count
        self.metrics.inbox_backlog.set(self.backlog)
        self.wake.set()

    def saturated(self) -> bool:
        return self.backlog >= self.inbox_limit

    async def accept(self, component: str, port: str, message: Message, trace_id: str) -> None:
        """Make a message durable in the inbox, as the output of `component.port`."""
        item = InboxItem(component, port, "out", json.dumps(message, sort_keys=True), trace_id)
        await self.database().inbox_add([item])
        self.backlog += 1
        self.metrics.inbox_backlog.set(self.backlog)
        self.wake.set()

    async def dead_letter(self, component: str, port: str, exc: BaseException, envelope: Envelope) -> None:
        # escaped NUL: PostgreSQL cannot keep it in text, and the dead letter must be written
        error = f"{type(exc).__name__}: {exc}".replace("\x00", "\\x00")[:4000]
        self.metrics.dead_letters.labels(component=component).inc()
        log(
            logging.WARNING,
            "dead letter",
            component=component,
            port=port,
            error=error,
            trace_id=envelope.trace_id,
            where="".join(traceback.format_exception_only(exc)).strip()[:4000],
        )
        await self.database().dead_letter_add(
            component, port, error, safe_json(envelope.payload), envelope.trace_id
        )

    async def dead_letter_at_origin(
        self, component: str, span_name: str, port: str, exc: BaseException, envelope: Envelope
    ) -> None:
        """A message a component produced itself (a source's emission, an aggregator's window
        result) refused before it was delivered: its dead letter gets a failed root span, so the
        dead letter's trace id names a trace that says why."""
        with self.telemetry.origin(span_name, "producer", component, envelope.trace_id) as span:
            span.outcome("dead_letter")
            span.failed(str(exc))
            await self.dead_letter(component, port, exc, envelope)

    # ----------------------------------------------------------------- delivering

    async def _dispatch(self) -> None:
        failures = 0
        poll = POLL_S[0]
        while True:
            last = not self.accepting  # stopping: claim what was accepted until now, then end
            room = self.max_in_flight - len(self.deliveries)
            try:
                rows = (
                    await self.database().inbox_claim(self.owner, min(room, 256), self.lease_s)
                    if room > 0
                    else []
                )
                # claimed but still waiting for queue room: their leases are renewed too, or a
                # slow consumer would let them expire and another claim would deliver them twice
                self.claimed.update(row.id for row in rows)
                try:
                    for row in rows:
                        await self._deliver(row)
                finally:
                    self.claimed.difference_update(row.id for row in rows)
            except Exception as exc:  # noqa: BLE001 - the database failed: retry; what was claimed stays in the inbox
                failures += 1
                self.db_error = f"{type(exc).__name__}: {exc}"[:500]
                log(logging.ERROR, "inbox claim failed", error=self.db_error, retry_in_s=backoff(failures))
                await asyncio.sleep(backoff(failures))
                continue
            failures, self.db_error = 0, None
            if last:
                return
            if len(rows) == min(room, 256) and rows:
                continue  # more may be waiting
            self.wake.clear()
            woken = False
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as the event is set, and stop() would wait for this task forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self.wake.wait()
                    woken = True
            poll = POLL_S[0] if rows or woken else min(poll * 2, POLL_S[1])

    async def _deliver(self, row: InboxRow) -> None:
        item = row.item
        if row.id in self.deliveries:  # already on its way in this process (a lease that lapsed)
            return
        if row.attempts > MAX_DELIVERIES:
            await self.database().inbox_to_dead_letter(
                row, f"delivered {row.attempts - 1} times without completing; see the logs of those attempts"
            )
            self.backlog -= 1
            return
        delivery = Delivery(row, self._delivered)
        self.deliveries[row.id] = delivery
        envelope = Envelope(json.loads(item.payload), item.trace_id, delivery)
        source = self.components.get(item.component)
        try:
            if source is None:
                raise LookupError(f"no component {item.component!r} in this system")
            if item.direction == "in":
                if item.port not in source.inputs:
                    raise LookupError(f"{item.component} has no input {item.port!r}")
                targets = [(source, item.port)]
            else:
                targets = self.targets(item.component, item.port, envelope.payload)
        except Exception as exc:  # noqa: BLE001 - an entry that cannot be routed is a dead letter
            delivery.add(1)
            try:
                await self.dead_letter(item.component, item.port, exc, envelope)
            except BaseException:
                delivery.fail()  # not recorded: stays in the inbox, delivered again after its lease
                raise
            delivery.finish()
            return
        if not targets:
            delivery.add(1)
            delivery.finish()
            return
        delivery.add(len(targets))  # all at once: a part-way count could reach zero too early
        try:
            for target, port in targets:
                await target.queues[port].put(Envelope(dict(envelope.payload), item.trace_id, delivery))
        except asyncio.CancelledError:
            self.deliveries.pop(row.id, None)  # never acknowledged: delivered again later
            raise

    def _delivered(self, delivery: Delivery) -> None:
        if delivery.failed:  # stays claimed until its lease ends, then is delivered again
            self.deliveries.pop(delivery.row.id, None)
            self.acked.set()
            return
        self.acks.append(delivery.row.id)
        self.ack_wanted.set()

    async def _acknowledge(self) -> None:
        failures = 0
        while True:
            await self.ack_wanted.wait()
            self.ack_wanted.clear()
            try:
                await self._flush_acks()
            except Exception as exc:  # noqa: BLE001 - the database failed: the acks wait and retry
                failures += 1
                log(logging.ERROR, "inbox ack failed", error=f"{type(exc).__name__}: {exc}"[:500])
                await asyncio.sleep(backoff(failures))
                self.ack_wanted.set()
                continue
            failures = 0

    async def _flush_acks(self) -> None:
        ids, self.acks = self.acks, []
        if not ids:
            return
        try:
            await self.database().inbox_ack(ids)
        except BaseException:
            self.acks = ids + self.acks  # acknowledged later; they stay claimed (and renewed) meanwhile
            raise
        for row_id in ids:
            self.deliveries.pop(row_id, None)
        self.backlog = max(0, self.backlog - len(ids))
        self.metrics.inbox_backlog.set(self.backlog)
        self.acked.set()
        self.wake.set()  # room for the dispatcher to claim more

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                held = sorted(set(self.deliveries) | self.claimed)
                if held:
                    await self.database().inbox_renew(self.owner, held, self.lease_s)
                if self.spec.backend == "postgres":  # other replicas add and remove entries too
                    self.backlog = await self.database().inbox_count()
                    self.metrics.inbox_backlog.set(self.backlog)
            except Exception as exc:  # noqa: BLE001 - the database failed: renew at the next turn
                log(logging.ERROR, "inbox lease renewal failed", error=f"{type(exc).__name__}: {exc}"[:500])

    async def replay(self, ids: list[int] | None) -> int:
        """Dead letters back into the inbox, to the input they failed on."""

        def replayable(component: str, port: str) -> bool:
            target = self.components.get(component)
            return target is not None and port in target.inputs

        moved = await self.database().dead_letter_replay(ids, replayable)
        self.backlog += moved
        self.wake.set()
        return moved
