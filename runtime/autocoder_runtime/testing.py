"""Helpers for a generated system's own tests: one component's kernel path against a real
SQLite database under DATA_DIR, without queues or a server, and a time limit for every test."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from types import FrameType
from typing import Any, TypeVar

from autocoder_runtime.component import Component, data_dir
from autocoder_runtime.database import open_database
from autocoder_runtime.kinds import Aggregator, Store
from autocoder_runtime.messages import Message, OutputInvalid, validate
from autocoder_runtime.spec import SystemSpec
from autocoder_runtime.system import System

C = TypeVar("C", bound=Component)
Outputs = list[tuple[str, Message]]


@contextlib.asynccontextmanager
async def harness(cls: type[C]) -> AsyncIterator[C]:
    """The component alone in a system of its own, its database freshly made under DATA_DIR."""
    name = cls.__name__.lower()
    system = System(SystemSpec(name="test", version="0", order=(name,)), {name: cls})
    system.db = await asyncio.to_thread(open_database, "sqlite", f"test-{uuid.uuid4().hex}", data_dir(), None)
    component = system.components[name]
    assert isinstance(component, cls)
    try:
        await component.open()
        yield component
    finally:
        await component.close()
        await asyncio.to_thread(system.db.close)


async def _outputs(component: Component, port: str, payloads: list[Any]) -> Outputs:
    results: Outputs = []
    for payload in payloads:
        message = validate(component.inputs[port], payload)
        for out_port, out in await component._guarded(port, message):
            results.append((out_port, validate(component.outputs[out_port], out, OutputInvalid)))
    if isinstance(component, Aggregator):
        (out_port,) = component.outputs
        for start in sorted(component.windows):
            for out in component.results(start, list(component.windows[start])):
                results.append((out_port, validate(component.outputs[out_port], out, OutputInvalid)))
    return results


def run_many(cls: type[Component], port: str, payloads: list[Any]) -> Outputs:
    """Messages through the kernel path: validate each input, run the logic, validate every
    output; an aggregator's windows are then closed and their results returned. Raises
    Rejected where the runtime would dead-letter."""

    async def run() -> Outputs:
        async with harness(cls) as component:
            return await _outputs(component, port, payloads)

    return asyncio.run(run())


def run_once(cls: type[Component], port: str, payload: Any) -> Outputs:
    return run_many(cls, port, [payload])


def stored(cls: type[Store], port: str, payloads: list[Any]) -> dict[str, Message]:
    """Write messages through a store and read every record back from its database."""

    async def run() -> dict[str, Message]:
        async with harness(cls) as store:
            await _outputs(store, port, payloads)
            key = store.StoreConfig.model_validate(store.spec.config).key
            records = await store.list(1_000_000, 0)
            return {str(record[key]): record for record in records}

    return asyncio.run(run())


class TimeLimitExceeded(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail the block after `seconds` (SIGALRM: it interrupts even a CPU-bound call). Only the
    main thread can receive signals; elsewhere the block runs unlimited."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeLimitExceeded(f"test ran longer than its limit of {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
