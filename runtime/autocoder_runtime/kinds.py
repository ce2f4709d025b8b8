"""Behaviour of each component kind. A generated component subclasses one of these and supplies
only its models, its compiled logic (as methods) and its spec."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import IO, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from autocoder_runtime.component import Component, Outputs, data_dir, run_logic, single
from autocoder_runtime.database import InboxItem
from autocoder_runtime.logs import log
from autocoder_runtime.messages import (
    Envelope,
    Message,
    OutputInvalid,
    Rejected,
    Transient,
    strict_json,
    validate,
)
from autocoder_runtime.settings import queue_size


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def confined(root: Path, relative: str) -> Path:
    """`relative` under `root`, refusing any path that resolves outside it (`..`, an absolute
    path, a symlink pointing away)."""
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise ValueError(f"path {relative!r} leaves the data directory {base}")
    return path


# --------------------------------------------------------------------------- logic kinds


class Source(Component):
    """Emits `generate(seq, ts)` every `interval_s` into the inbox, like an accepted message."""

    class SourceConfig(Config):
        interval_s: float = Field(default=1.0, gt=0)
        max_messages: int | None = Field(default=None, ge=1)

    def generate(self, seq: int, ts: float) -> Message:
        raise NotImplementedError

    async def start(self) -> None:
        await super().start()
        self.spawn(f"{self.name}.tick", self._tick)

    async def _tick(self) -> None:
        config = self.SourceConfig.model_validate(self.spec.config)
        port = single(self.outputs)
        seq = 0
        while config.max_messages is None or seq < config.max_messages:
            seq += 1
            envelope = Envelope({"seq": seq})
            self.series().received.inc()
            try:
                message = validate(
                    self.outputs[port], run_logic(self.generate, seq, time.time()), OutputInvalid
                )
            except Rejected as exc:
                await self.system.dead_letter_at_origin(self.name, f"{self.name} emit", port, exc, envelope)
            else:
                while self.system.saturated():  # back-pressure: wait for the inbox to drain
                    await asyncio.sleep(config.interval_s)
                while not self.system.accepting:  # stopping: add nothing the drain cannot finish
                    await asyncio.sleep(min(config.interval_s, 0.1))
                with self.system.telemetry.origin(
                    f"{self.name} emit", "producer", self.name, envelope.trace_id
                ):
                    await self.system.accept(self.name, port, message, envelope.trace_id)
                self.series().emitted.inc()
            await asyncio.sleep(config.interval_s)


class ApiEndpoint(Component):
    """HTTP ingress: the app validates each request and puts it in the inbox."""


class Transformer(Component):
    def transform(self, msg: Message) -> Message:
        raise NotImplementedError

    def process(self, port: str, message: Message) -> Outputs:
        return [(single(self.outputs), run_logic(self.transform, message))]


class Filter(Component):
    def where(self, msg: Message) -> bool:
        raise NotImplementedError

    def process(self, port: str, message: Message) -> Outputs:
        if run_logic(self.where, message):
            return [(single(self.outputs), message)]
        return []


class Router(Component):
    """The first route whose condition holds picks the output; else `default`; else rejected."""

    def route(self, msg: Message) -> str | None:
        raise NotImplementedError

    def process(self, port: str, message: Message) -> Outputs:
        target = run_logic(self.route, message)
        if target is None:
            raise Rejected("no route matched and the router has no default")
        return [(target, message)]


class Custom(Component):
    """Free-form logic written by an LLM provider: `handle_message` returns what to emit."""

    def handle_message(self, port: str, msg: Message) -> Outputs:
        raise NotImplementedError

    def process(self, port: str, message: Message) -> Outputs:
        return list(run_logic(self.handle_message, port, message))


# --------------------------------------------------------------------------- aggregator


class Aggregator(Component):
    """Keyed tumbling windows of `window_s`, persisted in the database.

    A message belongs to the window of its event time when `event_time` names a field holding
    epoch seconds, else of the time it is processed. Each (window, key) accumulator is written
    to the database as the message is folded in, so a restart continues the window. A window
    closes once the clock passes its end plus `grace_s`: its results (one message per key, in
    first-seen order) go to the inbox in the same transaction that forgets the window. At most
    `max_keys` keys are held per window: a new key past that closes the oldest key early (its
    partial result is emitted, marked by the window bounds like any other).
    """

    class AggregatorConfig(Config):
        window_s: float = Field(gt=0)
        max_keys: int = Field(default=10000, ge=1)
        event_time: str | None = None
        grace_s: float = Field(default=0.0, ge=0)

    key_field: ClassVar[str | None] = None
    # output field -> (count|sum|avg|min|max, name of the method giving the value or None)
    aggregates: ClassVar[dict[str, tuple[str, str | None]]] = {}

    def key(self, msg: Message) -> Any:
        raise NotImplementedError

    def __init__(self, name: str, system: Any) -> None:
        super().__init__(name, system)
        self.config = self.AggregatorConfig.model_validate(self.spec.config)
        # window start -> key (JSON text) -> {"key": key, "acc": {field: [count, sum, min, max]}}
        self.windows: dict[float, dict[str, dict[str, Any]]] = {}

    async def open(self) -> None:
        for start, key, state, _ in await self.system.database().window_load(self.name):
            self.windows.setdefault(start, {})[key] = json.loads(state)

    async def start(self) -> None:
        # one consumer: folding is read-modify-write of the window state
        self.queues = {port: asyncio.Queue(maxsize=queue_size()) for port in self.inputs}
        for port in self.inputs:
            self.spawn(f"{self.name}.{port}", functools.partial(self._consume, port))
        self.spawn(f"{self.name}.windows", self._close_due)

    def now(self) -> float:
        """The processing-time clock (the test harness pins it: see testing._outputs)."""
        return time.time()

    def window_of(self, msg: Message) -> float:
        moment = self.now()
        if self.config.event_time is not None:
            value = msg.get(self.config.event_time)
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise Rejected(f"event time field {self.config.event_time!r} is not a number: {value!r}")
            moment = float(value)
        return math.floor(moment / self.config.window_s) * self.config.window_s

    async def aprocess(self, port: str, message: Message) -> Outputs:
        start = self.window_of(message)
        key = run_logic(self.key, message)
        key_text = json.dumps(key, sort_keys=True)
        window = self.windows.setdefault(start, {})
        if key_text not in window and len(window) >= self.config.max_keys:
            await self.close_window(start, [next(iter(window))])
            window = self.windows.setdefault(start, {})
        state = window.setdefault(key_text, {"key": key, "acc": {}})
        self.fold(state["acc"], message)
        await self.system.database().window_put(self.name, start, key_text, json.dumps(state, sort_keys=True))
        return []

    def fold(self, acc: dict[str, list[Any]], message: Message) -> None:
        """Fold one message into a key's accumulators: [count, sum, min, max] per output."""
        for out, (function, method) in self.aggregates.items():
            value = 1 if method is None else run_logic(getattr(self, method), message)
            slot = acc.setdefault(out, [0, 0, value, value])
            slot[0] += 1
            if function in ("sum", "avg"):
                slot[1] += value
            slot[2] = min(slot[2], value)
            slot[3] = max(slot[3], value)

    def results(self, start: float, keys: list[str]) -> list[Message]:
        """The window's output messages for these keys, restricted to the output's fields."""
        port = single(self.outputs)
        fields = self.outputs[port].model_fields
        out = []
        for key_text in keys:
            state = self.windows[start][key_text]
            message: Message = {"window_start": start, "window_end": start + self.config.window_s}
            if self.key_field:
                message[self.key_field] = state["key"]
            for name, (function, _) in self.aggregates.items():
                count, total, low, high = state["acc"][name]
                message[name] = {"count": count, "sum": total, "avg": total / count, "min": low, "max": high}[
                    function
                ]
            out.append({k: v for k, v in message.items() if k in fields})
        return out

    def due(self, now: float) -> list[float]:
        return sorted(s for s in self.windows if s + self.config.window_s + self.config.grace_s <= now)

    async def close_window(self, start: float, keys: list[str] | None = None) -> None:
        """Emit a window's results (or those of some keys) and forget them, atomically."""
        port = single(self.outputs)
        keys = list(self.windows.get(start, {})) if keys is None else keys
        items = []
        for message in self.results(start, keys):
            envelope = Envelope(message)
            try:
                valid = validate(self.outputs[port], message, OutputInvalid)
            except Rejected as exc:
                await self.system.dead_letter_at_origin(self.name, f"{self.name} window", port, exc, envelope)
                continue
            items.append(
                InboxItem(self.name, port, "out", json.dumps(valid, sort_keys=True), envelope.trace_id)
            )
        with contextlib.ExitStack() as spans:  # a window's results enter the system here
            for item in items:
                spans.enter_context(
                    self.system.telemetry.origin(f"{self.name} window", "producer", self.name, item.trace_id)
                )
            await self.system.database().window_close(self.name, start, keys, items)
        window = self.windows.get(start, {})
        for key in keys:
            window.pop(key, None)
        if not window:
            self.windows.pop(start, None)
        self.series().emitted.inc(len(items))
        self.system.added(len(items))

    async def _close_due(self) -> None:
        while True:
            for start in self.due(time.time()):
                await self.close_window(start)
            await asyncio.sleep(min(1.0, max(0.05, self.config.window_s / 10)))


# --------------------------------------------------------------------------- store


class Store(Component):
    """Writes each message by its key field, idempotently (a redelivery overwrites the same
    record); the app serves GET /<store>/{key} and GET /<store>."""

    class StoreConfig(Config):
        key: str
        read_endpoints: bool = True

    _config: StoreConfig | None = None

    def config(self) -> StoreConfig:
        """The store's config, validated on first use (once: a per-message validation cost as
        much as the rest of the store's own step); one that fails validation is not kept, so
        each message is refused as it was."""
        config = self._config
        if config is None:
            config = self._config = self.StoreConfig.model_validate(self.spec.config)
        return config

    async def aprocess(self, port: str, message: Message) -> Outputs:
        config = self.config()
        key = str(message[config.key])
        if "\x00" in key:  # SQLite would keep it, PostgreSQL refuses it: refused on both alike
            raise Rejected(
                f"the store key (field {config.key!r}) contains a NUL character (\\u0000), which "
                "PostgreSQL cannot store in text; fix: remove NUL characters from the key"
            )
        await self.system.database().record_put(self.name, key, strict_json(message))
        return []

    async def get(self, key: str) -> Message | None:
        if "\x00" in key:  # no stored key holds one (aprocess refuses them)
            return None
        text = await self.system.database().record_get(self.name, key)
        return None if text is None else dict(json.loads(text))

    async def list(self, limit: int, offset: int) -> list[Message]:
        return [
            json.loads(text) for text in await self.system.database().record_list(self.name, limit, offset)
        ]


# --------------------------------------------------------------------------- sink

SECRET_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_secrets(text: str, declared: tuple[str, ...]) -> str:
    """`$NAME` / `${NAME}` become the value of that environment variable only when NAME is a
    secret declared in deployment.yaml; any other text, `$HOME` included, stays literal."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return os.environ.get(name, "") if name in declared else match.group(0)

    return SECRET_REFERENCE.sub(replace, text)


class Sink(Component):
    """Terminal: log the message, append it to a JSON-lines file under DATA_DIR, or POST it to
    a webhook (429 and 5xx answers and connection errors are transient; other 4xx are not)."""

    class SinkConfig(Config):
        target: Literal["log", "file", "webhook"] = "log"
        path: str | None = None
        url: str | None = None
        headers: dict[str, str] | None = None

    def __init__(self, name: str, system: Any) -> None:
        super().__init__(name, system)
        self.config = self.SinkConfig.model_validate(self.spec.config)
        self.client: Any = None
        self.file: IO[str] | None = None
        self.file_lock = asyncio.Lock()

    async def open(self) -> None:
        if self.config.target == "webhook":
            import httpx

            self.client = httpx.AsyncClient(timeout=10.0)
        elif self.config.target == "file":
            path = self.file_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = await asyncio.to_thread(path.open, "a", encoding="utf-8")

    def file_path(self) -> Path:
        """The JSON-lines file a `file` sink appends to, confined to DATA_DIR."""
        return confined(data_dir(), self.config.path or f"{self.name}.jsonl")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        if self.file is not None:
            await asyncio.to_thread(self.file.close)
            self.file = None

    async def aprocess(self, port: str, message: Message) -> Outputs:
        if self.config.target == "log":
            log(logging.INFO, "sink", component=self.name, message=message)
        elif self.config.target == "file":
            line = strict_json(message) + "\n"
            async with self.file_lock:
                await asyncio.to_thread(self._append, line)
        else:
            await self._post(message)
        return []

    def _append(self, line: str) -> None:
        assert self.file is not None
        self.file.write(line)
        self.file.flush()

    async def _post(self, message: Message) -> None:
        import httpx

        assert self.config.url is not None and self.client is not None
        headers = {
            k: expand_secrets(v, self.system.spec.secrets) for k, v in (self.config.headers or {}).items()
        }
        try:
            response = await self.client.post(self.config.url, json=message, headers=headers)
        except httpx.TransportError as exc:
            raise Transient(f"webhook unreachable: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise Transient(f"webhook answered {status}", retry_after=_retry_after(response.headers))
        if status >= 400:
            raise Rejected(f"webhook answered {status}: {response.text[:200]}")


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
