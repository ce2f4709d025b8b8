"""Small systems built by hand from the runtime's classes, and the real things the runtime's
tests run them against: a SQLite file under a temp DATA_DIR, Starlette's TestClient running the
app with its lifespan, a `python -m <system> serve` child process, a webhook peer on 127.0.0.1.

Nothing here stands in for the runtime: the systems are ordinary `System`s whose components
subclass the runtime's kinds, exactly as a generated system's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from autocoder_runtime.app import create_app
from autocoder_runtime.component import Component
from autocoder_runtime.kinds import ApiEndpoint, Custom, Sink, Store
from autocoder_runtime.messages import Message, MessageModel
from autocoder_runtime.spec import BindingSpec, ComponentSpec, IngressRoute, StoreRoute, SystemSpec
from autocoder_runtime.system import System
from pydantic import BaseModel, Field
from starlette.testclient import TestClient

HERE = Path(__file__).resolve().parent
KEY = "runtime-test-key"
AUTH = {"X-API-Key": KEY}
INT64 = {"ge": -(2**63), "le": 2**63 - 1}


class Item(MessageModel):
    """What the demo systems carry: `act` tells the demo logic what to do with it."""

    id: str = Field(pattern=r"^[a-z0-9-]{1,40}$")
    n: int = Field(default=0, **INT64)
    ts: float = 0.0
    act: str = "ok"


class Free(MessageModel):
    """An integer without bounds (a hand-written model; generated ones always carry int64)."""

    id: str
    n: int


class Total(MessageModel):
    id: str
    window_start: float
    window_end: float
    count: int
    total: int
    avg: float


def spec(**fields: Any) -> ComponentSpec:
    return ComponentSpec.model_validate(fields)


def configured(cls: type[Component], **fields: Any) -> type[Component]:
    """`cls` with its spec replaced (the way a generated component carries its spec)."""
    return type(cls.__name__, (cls,), {"spec": spec(**fields)})


class Api(ApiEndpoint):
    outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Item}


class Work(Custom):
    """Demo logic: `act` = ok (pass on), reject (its logic refuses: dead letter), boom (an
    unexpected exception), big (emit an integer JSON cannot hold), sleep:<s> (take that long),
    hold (wait until the test opens the gate: see `held`)."""

    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Item, "big": Free}
    broken: ClassVar[bool] = False  # tests flip it: while True, every message is rejected
    gate: ClassVar[threading.Event] = threading.Event()  # `hold` messages wait while it is clear

    def handle_message(self, port: str, msg: Message) -> list[tuple[str, Message]]:
        act = msg["act"]
        if type(self).broken:
            raise ValueError("the logic is broken for now")
        if act == "reject":
            raise ValueError(f"cannot handle {msg['id']}")
        if act == "boom":
            raise RuntimeError("unexpected failure in the logic")
        if act == "big":
            return [("big", {"id": msg["id"], "n": 10**5000})]
        return [("out", {**msg, "n": msg["n"] + 1})]

    async def aprocess(self, port: str, message: Message) -> list[tuple[str, Message]]:
        if message["act"].startswith("sleep:"):
            await asyncio.sleep(float(message["act"].split(":", 1)[1]))
        if message["act"] == "hold":  # bounded: a test that forgets to open the gate still ends
            await asyncio.to_thread(type(self).gate.wait, 10.0)
        return self.process(port, message)


Work.gate.set()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """While inside, Work's `hold` messages stay in processing (so they stay in the inbox): a
    test controls when they finish instead of waiting on a real delay."""
    Work.gate.clear()
    try:
        yield
    finally:
        Work.gate.set()


class Items(Store):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
    spec = spec(config={"key": "id"})


class Bigs(Store):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Free}
    spec = spec(config={"key": "id"})


class Hook(Sink):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}


class Recorder(Custom):
    """Takes each message and records its id, emits nothing, never waits (reset `seen` first)."""

    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {}
    seen: ClassVar[list[str]] = []

    def handle_message(self, port: str, msg: Message) -> list[tuple[str, Message]]:
        type(self).seen.append(msg["id"])
        return []


def make(
    name: str,
    components: dict[str, type[Component]],
    bindings: list[tuple[str, str, str, str]],
    ingress: list[dict[str, Any]] = (),  # type: ignore[assignment]
    stores: list[str] = (),  # type: ignore[assignment]
    **fields: Any,
) -> System:
    """A system of these components; bindings are (source, port, target, target_port)."""
    routes = [
        IngressRoute.model_validate(
            {
                "method": "POST",
                "port": "out",
                "auth": "api_key",
                "api_key_env": "API_KEY",
                "max_body_bytes": 1_048_576,
            }
            | route
        )
        for route in ingress
    ]
    system_spec = SystemSpec(
        name=name,
        version="1.0.0",
        bindings=tuple(BindingSpec(source=s, port=p, target=t, target_port=tp) for s, p, t, tp in bindings),
        ingress=tuple(routes),
        stores=tuple(StoreRoute(component=store, key="id") for store in stores),
        order=tuple(components),
        **fields,
    )
    return System(system_spec, components)


def demo(
    name: str = "demo",
    work: type[Component] = Work,
    api: dict[str, Any] | None = None,
    **fields: Any,
) -> System:
    """api -> work -> items (a store); work's big output -> bigs (a store)."""
    return make(
        name,
        {"api": Api, "work": work, "items": Items, "bigs": Bigs},
        [("api", "out", "work", "in"), ("work", "out", "items", "in"), ("work", "big", "bigs", "in")],
        ingress=[{"component": "api", "path": "/items"} | (api or {})],
        stores=["items", "bigs"],
        **fields,
    )


def hooked(
    name: str,
    url: str,
    headers: dict[str, str] | None = None,
    secrets: tuple[str, ...] = (),
    **capabilities: Any,
) -> System:
    """api -> hook (a webhook sink to `url`, sending `headers`) with these capabilities."""
    hook = configured(
        Hook, config={"target": "webhook", "url": url, "headers": headers}, capabilities=capabilities
    )
    return make(
        name,
        {"api": Api, "hook": hook},
        [("api", "out", "hook", "in")],
        ingress=[{"component": "api", "path": "/items"}],
        secrets=secrets,
    )


# builders a child process can name (see `package`)
BUILDERS: dict[str, Callable[[], System]] = {
    "demo": lambda: demo("demo"),
    "demo_open_ingress": lambda: demo("demo_open_ingress", api={"api_key_env": "INGRESS_KEY"}),
    "demo_postgres": lambda: demo("demo_postgres", backend="postgres"),
}


def package(root: Path, name: str) -> Path:
    """A package `name` under `root` whose `python -m name` runs BUILDERS[name] through the
    runtime's CLI, as a generated system's __main__ does; returns `root` (for PYTHONPATH)."""
    pkg = root / name
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "import rtkit\n"
        "from autocoder_runtime.cli import main\n"
        f"sys.exit(main(rtkit.BUILDERS[{name!r}]))\n"
    )
    return root


def run_demo(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m demo *args` in a child with only `env` (plus its path and DATA_DIR) set, as
    an operator starts a generated system; its exit code and output, for refusals."""
    src = package(tmp_path / "src", "demo")
    return subprocess.run(
        [sys.executable, "-m", "demo", *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(src), "DATA_DIR": str(tmp_path / "d"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# --------------------------------------------------------------------------- running


@contextlib.contextmanager
def running(system: System) -> Iterator[TestClient]:
    """The system's app with its lifespan: started on enter, stopped (drained) on exit. A
    server-side exception fails the test (TestClient raises it)."""
    with TestClient(create_app(system)) as client:
        yield client


def no_errors_logged(caplog: Any) -> None:
    """Nothing at ERROR and no traceback in the captured log."""
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [(r.name, r.getMessage(), getattr(r, "fields", None)) for r in bad]


# --------------------------------------------------------------------------- observing


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `condition` until it is truthy (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.02)


def query(data: Path, system: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of the system's SQLite file, read with a connection of our own."""
    with contextlib.closing(sqlite3.connect(data / f"{system}.sqlite3", timeout=10)) as db:
        return [tuple(row) for row in db.execute(sql, params).fetchall()]


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample in /metrics text, or None when it is absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            given = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
            if given == wanted:
                return float(match.group(3))
    return None


def records(caplog: Any, event: str) -> list[dict[str, Any]]:
    """The runtime's log events named `event`, with their fields."""
    return [
        {"level": r.levelname, **getattr(r, "fields", {})}
        for r in caplog.records
        if r.name == "autocoder_runtime" and r.getMessage() == event
    ]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --------------------------------------------------------------------------- a webhook peer


class Peer:
    """A webhook receiver on 127.0.0.1 (stdlib server). It answers each POST with the next
    (status, headers, delay in seconds) of `script`, then `default`; it records every request
    it gets (arrival time, JSON body, headers)."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], float]] = []
        self.default: tuple[int, dict[str, str], float] = (200, {}, 0.0)
        self.received: list[tuple[float, Message, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def bodies(self) -> list[Message]:
        with self.lock:
            return [body for _, body, _ in self.received]

    def times(self) -> list[float]:
        with self.lock:
            return [t for t, _, _ in self.received]

    def answer(self, body: Message, headers: dict[str, str]) -> tuple[int, dict[str, str], float]:
        with self.lock:
            self.received.append((time.monotonic(), body, headers))
            return self.script.pop(0) if self.script else self.default

    @contextlib.contextmanager
    def running(self) -> Iterator[Peer]:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                status, headers, delay = peer.answer(body, {k.lower(): v for k, v in self.headers.items()})
                time.sleep(delay)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join(5)


def python() -> str:
    return sys.executable


def environ(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}
