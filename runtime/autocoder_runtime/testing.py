"""Helpers for a generated system's own tests: one component's kernel path against a real
SQLite database under DATA_DIR, without queues or a server, and a time limit for every test."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, TypeVar

from autocoder_runtime.component import DEFAULT_DATA_DIR, Component, data_dir
from autocoder_runtime.database import Connection, Database, Dialect, open_database
from autocoder_runtime.kinds import Aggregator, Sink, Source, Store
from autocoder_runtime.logs import LOG
from autocoder_runtime.messages import Message, OutputInvalid, validate
from autocoder_runtime.metrics import Metrics
from autocoder_runtime.spec import SystemSpec
from autocoder_runtime.system import System

if TYPE_CHECKING:  # httpx costs ~0.2 s to import (its CLI's rich); a component's tests need none
    import httpx

C = TypeVar("C", bound=Component)
T = TypeVar("T")
Outputs = list[tuple[str, Message]]


def _alone(cls: type[Component]) -> System:
    """A system of the component `cls` alone (its name: the class name, lower case)."""
    name = cls.__name__.lower()
    return System(_spec(name), {name: cls})


def _spec(name: str) -> SystemSpec:
    """The spec of a system of the one component `name`."""
    return SystemSpec(name="test", version="0", order=(name,))


@contextlib.asynccontextmanager
async def harness(cls: type[C], database: str | None = None, inline: bool = False) -> AsyncIterator[C]:
    """The component alone in a system of its own, on the SQLite database `database` under
    DATA_DIR; by default on an empty one (`empty_database`), in a system reused by this
    test's runs with its counters back at zero (`_system`). The component is always new.
    The database is the runtime's own, with its writer thread and reader pool (what the bench
    tier times); `inline`: an `InlineDatabase`, which the test helpers below use."""
    name = cls.__name__.lower()
    system: System
    if database is None:
        reused = _current()
        system = _system(cls, reused)
        system.db = await _emptied(reused, inline)
    else:
        system = _alone(cls)
        system.db = await _open(database, data_dir(), inline)
    component = system.components[name]
    assert isinstance(component, cls)
    try:
        await component.open()
        yield component
    finally:
        await component.close()
        if database is not None and inline:
            system.db.close()
        elif database is not None:
            await asyncio.to_thread(system.db.close)


class InlineDatabase(Database):
    """The database of a test's runs: the runtime's `Database` (the same SQL, the same group
    transaction with a savepoint per write when one fails, the same reads on a connection of
    their own), except that each write is applied at once on the calling thread, the event
    loop's, instead of being handed to the writer thread, and each read on that thread's
    connection instead of the reader pool. A test runs one component on one message at a time,
    with nothing else on the loop to let run meanwhile: the hop to another thread and back,
    twice or three times a run, cost more than the SQL, and on a loaded machine each waited
    for a time slice. The runtime's own tests exercise the threads.

    It also knows which tables can hold rows (`filled`), so that emptying it for the next run
    deletes from those alone: SQLite asks the write connection's authorizer about every
    statement it prepares, naming the table of each INSERT; a table no statement of this
    connection ever inserted into is still as empty as the new file made it. A statement that
    changes the schema (a table made, dropped or attached) ends the tracking: every table is
    then emptied, as before. Deleting from five tables cost most of a store's run."""

    def __init__(self, dialect: Dialect) -> None:
        super().__init__(dialect, readers=1)  # the pool starts no thread until it is used
        self.connection: Connection | None = None
        self.opened = False
        # the tables an INSERT of this connection named, and those that count with AUTOINCREMENT
        # (whose inserts also write sqlite_sequence); None: not known, every table is emptied
        self.filled: set[str] | None = set()
        self.counted: set[str] = set()

    def open(self) -> None:
        connection = self._schema()
        self.connection = connection
        self.counted = {
            str(name)
            for name, sql in connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            if "AUTOINCREMENT" in str(sql or "").upper()
        }
        self._track(connection)
        self.opened = True

    def _reader(self) -> Connection:
        before = getattr(self.local, "connection", None)
        connection = super()._reader()
        if connection is not before:  # reads do not insert, but nothing here relies on it
            self._track(connection)
        return connection

    def _track(self, connection: Connection) -> None:
        if isinstance(connection, sqlite3.Connection):
            connection.set_authorizer(self._authorize)
        else:  # not SQLite's own connection: nothing tells which tables were written
            self.filled = None

    def _authorize(
        self, action: int, first: str | None, second: str | None, schema: str | None, trigger: str | None
    ) -> int:
        """SQLite's authorizer: allows everything, and notes what an INSERT fills."""
        if self.filled is not None:
            if action == sqlite3.SQLITE_INSERT and first is not None:
                self.filled.add(first)
            elif action in _SCHEMA_ACTIONS:
                self.filled = None
        return sqlite3.SQLITE_OK

    def empty(self, connection: Connection) -> None:
        """Delete every row a run may have left (`filled`), so that the database holds what a
        new file holds; sqlite_sequence too, when an AUTOINCREMENT table was filled."""
        if self.filled is None:
            _delete_all_rows(connection)
            return
        tables = sorted(self.filled)
        if self.filled & self.counted:
            tables.append("sqlite_sequence")
        for table in tables:
            connection.execute(f'DELETE FROM "{table}"')  # noqa: S608 - names SQLite gave us

    async def write(self, operation: Callable[[Connection], T]) -> T:
        if not self.opened:
            raise RuntimeError("the database is not open")
        self.written += 1
        self.connection, ((ok, value),) = self._apply(self.connection, [operation])
        if not ok:
            raise value
        result: T = value
        return result

    async def read(self, operation: Callable[[Connection], T]) -> T:
        if not self.opened:
            raise RuntimeError("the database is not open")
        return self._read(operation)

    def close(self) -> None:
        self.opened = False
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None
        super().close()


# authorizer actions after which the tables that may hold rows are no longer known
_SCHEMA_ACTIONS = frozenset(
    getattr(sqlite3, name)
    for name in dir(sqlite3)
    if name.startswith(("SQLITE_CREATE_", "SQLITE_DROP_")) or name in ("SQLITE_ALTER_TABLE", "SQLITE_ATTACH")
)


async def _open(name: str, directory: Path, inline: bool) -> Database:
    """`open_database("sqlite", name, directory, None)`, or its `InlineDatabase` (a new file
    starts as a copy of `_new_file`'s, a file there already is opened as it is)."""
    if not inline:
        return await asyncio.to_thread(open_database, "sqlite", name, directory, None)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.sqlite3"
    _new_file(target)
    database = InlineDatabase(_ThrowawayDialect(str(target)))
    database.open()
    return database


class _ThrowawayDialect(Dialect):
    """SQLite as the runtime connects to it, with `PRAGMA synchronous=OFF`: a test's database
    is a file under its own temporary DATA_DIR, deleted after it, that no test reads after a
    power loss. Data still reaches the operating system at every commit, so a restart within
    the test (`run_across_restart`) reads what was written; only the waits for the disk go.
    With NORMAL, closing each test's database synced its checkpoint to disk, 10-30 ms of
    waiting each on a busy disk."""

    def connect(self) -> Connection:
        connection = super().connect()
        connection.execute("PRAGMA synchronous=OFF")
        return connection


# the bytes of a new test database (the runtime's schema, no rows, WAL mode), made once by this
# process; empty: not made yet, or not usable (each file is then made by the schema as before)
_template: list[bytes | None] = []


def _new_file(target: Path) -> None:
    """Write the bytes of a new, empty test database to `target` unless a file is there (a
    restart opens its database again). Making the file (the switch to WAL, the schema's
    transaction) synced it to disk several times, 30-60 ms of a test's time on a busy disk,
    and its CPU was a tenth of a filter's test: each test's database is instead a copy of one
    this process made the same way, once. `InlineDatabase.open` still runs the schema on it
    (every statement finds its table there) and reads its tables, as on a file of its own."""
    if not _template:
        _template.append(_made_once(target.parent))
    data = _template[0]
    if data is None:
        return
    with contextlib.suppress(FileExistsError), open(target, "xb") as file:
        file.write(data)


def _made_once(directory: Path) -> bytes | None:
    """A new database made in `directory` by the schema and closed (which folds its WAL into
    the file and deletes it): the file's bytes, the file deleted; None when a WAL was left
    behind (the bytes would then miss part of the schema)."""
    path = directory / f"template-{uuid.uuid4().hex}.sqlite3"
    database = InlineDatabase(_ThrowawayDialect(str(path)))
    try:
        database.open()
    finally:
        database.close()
    wal = Path(f"{path}-wal")
    data = None if wal.exists() else path.read_bytes()
    for leftover in (path, wal, Path(f"{path}-shm"), Path(f"{path}.lock")):
        leftover.unlink(missing_ok=True)
    return data


class _Reused:
    """What the runs of one test share (a property test runs its component dozens of times,
    and making these anew for each run cost more than the run): the event loop of the
    synchronous helpers, one System per component class, and the SQLite database. Each run
    still starts from scratch where it matters: a new component instance, its system's
    counters at zero, and a database emptied of every row (sqlite_sequence included, so
    AUTOINCREMENT counts from 1 again), which is the database a new file would be. The
    generated conftest gives each test its own DATA_DIR and calls `release_databases` after it;
    a run under another DATA_DIR releases the previous one's."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.given = ("", "")  # DATA_DIR and the working directory it was resolved in
        self.runner = asyncio.Runner()
        self.database: Database | None = None
        self.emptied_at = -1  # the database's `written` count when it was last emptied
        self.systems: dict[type[Component], _ReusedSystem] = {}

    def release(self) -> None:
        _unclosed.append(self.runner)
        try:
            asyncio.get_running_loop()  # released from inside a loop: close them after it
        except RuntimeError:
            while _unclosed:
                _unclosed.pop().close()
        if self.database is not None:
            self.database.close()
            self.database = None


_reused: list[_Reused] = []  # this DATA_DIR's, or none
_unclosed: list[asyncio.Runner] = []  # released while a loop ran, which cannot close one


def _current() -> _Reused:
    # DATA_DIR as set, not even made a Path (data_dir): this runs twice a run, and parsing a
    # path cost a tenth of a transformer's run; a new setting is resolved below
    given = (os.environ.get("DATA_DIR", DEFAULT_DATA_DIR), os.getcwd())
    if _reused and _reused[0].given == given:
        return _reused[0]
    directory = data_dir().resolve()
    if not (_reused and _reused[0].directory == directory):
        release_databases()  # another DATA_DIR: the previous test's are done with
        _reused.append(_Reused(directory))
    _reused[0].given = given
    return _reused[0]


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on this test's event loop (`_Reused`), which its runs share. The loop's
    own `run_until_complete`, not `Runner.run`: that one installs and removes a SIGINT handler
    around every call (two system calls, most of its cost per run) and runs every call in one
    shared context, so that a context variable one run set would be seen by the next; here
    each run's task gets a copy of the caller's context, as under `asyncio.run`."""
    return _current().runner.get_loop().run_until_complete(coroutine)


def _system(cls: type[Component], reused: _Reused) -> _ReusedSystem:
    """This test's system of `cls` alone, with a new component and every metric back at zero."""
    name = cls.__name__.lower()
    system = reused.systems.get(cls)
    if system is None:
        system = reused.systems[cls] = _ReusedSystem(_spec(name), {name: cls})
        return system
    system.renew()
    system.backlog = 0
    system.components[name] = cls(name, system)
    return system


class _ReusedSystem(System):
    """A System whose metrics are made anew, as a new System makes them (every component's
    series at zero), when they are first used after `renew`: each run of a test finds what a
    new system would hold, and a run that records no metric at all (most: a message through
    the kernel path counts nothing until it is dispatched by a running system) costs nothing
    for them. Clearing and making the series again cost more than a transformer's run."""

    _metrics: Metrics | None = None

    @property
    def metrics(self) -> Metrics:
        if self._metrics is None:
            self._metrics = Metrics(self.name)
            for name in self.components:
                self._metrics.touch(name)
        return self._metrics

    @metrics.setter
    def metrics(self, value: Metrics) -> None:
        self._metrics = value

    def renew(self) -> None:
        self._metrics = None


async def empty_database(inline: bool = False) -> Database:
    """An open SQLite database under DATA_DIR with the schema and no rows (see `_Reused`):
    emptied only when something was written to it since it last was. `inline`: an
    `InlineDatabase` (a test's database of the other sort is closed first)."""
    return await _emptied(_current(), inline)


async def _emptied(reused: _Reused, inline: bool) -> Database:
    database = reused.database
    if database is not None and isinstance(database, InlineDatabase) != inline:
        await asyncio.to_thread(database.close)
        database = reused.database = None
    if database is None:
        database = reused.database = await _open(f"test-{uuid.uuid4().hex}", reused.directory, inline)
    elif database.written != reused.emptied_at:
        await database.write(database.empty if isinstance(database, InlineDatabase) else _delete_all_rows)
    reused.emptied_at = database.written
    return database


def _delete_all_rows(connection: Connection) -> None:
    tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    for (table,) in tables:
        connection.execute(f'DELETE FROM "{table}"')  # noqa: S608 - names from sqlite_master


def release_databases() -> None:
    """Close the event loop, systems and database this test's runs shared (the generated
    conftest, after each test)."""
    while _reused:
        _reused.pop().release()


async def _outputs(
    component: Component, port: str, payloads: list[Any], pinned: float | None = None, flush: bool = True
) -> Outputs:
    results: Outputs = []
    if isinstance(component, Aggregator):
        # one processing time for the whole batch: messages that arrive together fall in one
        # window, even when the wall clock crosses a window boundary between two of them
        moment = time.time() if pinned is None else pinned
        component.now = lambda: moment  # type: ignore[method-assign]
    for payload in payloads:
        message = validate(component.inputs[port], payload)
        for out_port, out in await component._guarded(port, message):
            results.append((out_port, validate(component.outputs[out_port], out, OutputInvalid)))
    if flush and isinstance(component, Aggregator):
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
        async with harness(cls, inline=True) as component:
            return await _outputs(component, port, payloads)

    return _run(run())


def run_across_restart(cls: type[Component], port: str, before: list[Any], after: list[Any]) -> Outputs:
    """`before` through the kernel path, then a restart (the component and its database closed,
    a new component opened on the same database file), then `after`; an aggregator's windows
    are closed at the end, so a window that continued across the restart gives one result."""

    async def run() -> Outputs:
        database, pinned = f"test-{uuid.uuid4().hex}", time.time()
        async with harness(cls, database, inline=True) as component:
            results = await _outputs(component, port, before, pinned, flush=False)
        async with harness(cls, database, inline=True) as component:
            return results + await _outputs(component, port, after, pinned)

    return _run(run())


def run_once(cls: type[Component], port: str, payload: Any) -> Outputs:
    return run_many(cls, port, [payload])


def stored(cls: type[Store], port: str, payloads: list[Any]) -> dict[str, Message]:
    """Write messages through a store and read every record back from its database."""

    async def run() -> dict[str, Message]:
        async with harness(cls, inline=True) as store:
            await _outputs(store, port, payloads)
            key = store.StoreConfig.model_validate(store.spec.config).key
            records = await store.list(1_000_000, 0)
            return {str(record[key]): record for record in records}

    return _run(run())


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


def generated(cls: type[Source], count: int) -> list[Message]:
    """A source's first `count` messages, each validated against its output schema."""

    async def run() -> list[Message]:
        async with harness(cls, inline=True) as source:
            (port,) = source.outputs
            return [
                validate(source.outputs[port], source.generate(seq, 0.0), OutputInvalid)
                for seq in range(1, count + 1)
            ]

    return _run(run())


def webhook_requests(cls: type[Sink], port: str, payloads: list[Any]) -> list[tuple[Message, dict[str, str]]]:
    """Send messages through a webhook sink to a server on 127.0.0.1 that answers 200, in
    place of the configured URL; returns what it received (JSON body, headers)."""
    received: list[tuple[Message, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the stdlib's name
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            received.append((json.loads(body), {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    local = type(
        cls.__name__,
        (cls,),
        {"spec": cls.spec.model_copy(update={"config": {**cls.spec.config, "url": url}})},
    )
    try:
        run_many(local, port, payloads)
    finally:
        server.shutdown()
        server.server_close()
    return received


def delivered(cls: type[Sink], port: str, payloads: list[Any]) -> list[Message]:
    """Send messages through a sink and return what it delivered, read from where it went: the
    lines it appended to its file under DATA_DIR, the bodies a webhook on 127.0.0.1 received, or
    the messages of its `sink` log records."""
    if cls.SinkConfig.model_validate(cls.spec.config).target == "webhook":
        return [body for body, _ in webhook_requests(cls, port, payloads)]
    logged: list[Message] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            fields = getattr(record, "fields", {})
            if record.getMessage() == "sink" and fields.get("component") == cls.__name__.lower():
                logged.append(fields["message"])

    async def run() -> list[Message]:
        async with harness(cls, inline=True) as sink:
            path = sink.file_path() if sink.config.target == "file" else None
            start = path.stat().st_size if path is not None and path.exists() else 0
            await _outputs(sink, port, payloads)
        if path is None:
            return logged
        with path.open("rb") as handle:  # only what this run appended (DATA_DIR is shared)
            handle.seek(start)
            return [json.loads(line) for line in handle.read().decode().splitlines()]

    handler, level = Capture(), LOG.level
    LOG.addHandler(handler)
    if not LOG.isEnabledFor(logging.INFO):  # a sink logs at INFO
        LOG.setLevel(logging.INFO)
    try:
        return _run(run())
    finally:
        LOG.removeHandler(handler)
        LOG.setLevel(level)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def dies_with_parent() -> Callable[[], None] | None:
    """A Popen preexec_fn: the child gets SIGKILL when the thread that started it dies
    (Linux prctl PR_SET_PDEATHSIG), so a test run killed outright (doit SIGKILLed during
    test:integration) leaves no server behind. None where prctl does not exist."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def set_death_signal() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl: no signal would come
            os._exit(1)

    return set_death_signal


@contextlib.contextmanager
def served(
    system: str, src: Path, data: Path, api_key: str, ready_timeout_s: float = 60.0
) -> Iterator[httpx.Client]:
    """`python -m <system> serve` on 127.0.0.1 in a child process, until ready; yields a client.
    On exit: SIGTERM, and the server must stop within 20 s, cleanly, with nothing left in its
    inbox (its log says `"undrained": 0`). The port is any free one, which the server chose
    and said on its ready pipe."""
    env = {
        **os.environ,
        "DATA_DIR": str(data),
        "API_KEY": api_key,
        "PYTHONPATH": str(src),
        "LOG_LEVEL": "INFO",
    }
    log_path = data.parent / f"{system}-server.log"
    data.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log_file:
        process, ready = launch(system, 0, env, log_file)
        import httpx  # while the server starts

        port = wait_ready(process, ready, log_path, ready_timeout_s)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        try:
            yield client
        finally:
            client.close()
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                raise AssertionError("server did not stop within 20 s of SIGTERM") from None
    output = log_path.read_text()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why it ended
    assert code in (0, -signal.SIGTERM), output[-2000:]
    assert '"undrained": 0' in output, output[-2000:]
    assert "Traceback" not in output, output[-4000:]


def launch(
    system: str, port: int, env: dict[str, str], log_file: IO[str] | int
) -> tuple[subprocess.Popen[bytes], int]:
    """Start `python -m <system> serve` on 127.0.0.1:`port` (0: any free one) without waiting;
    the process and the read end of the pipe it says it serves on (`serve --ready-fd`), which
    `wait_ready` reads. The child dies with this thread (`dies_with_parent`)."""
    read, write = os.pipe()
    command = [sys.executable, "-m", system, "serve", "--host", "127.0.0.1", "--port", str(port)]
    try:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [*command, "--ready-fd", str(write)],
            env=env,
            stdout=log_file,
            stderr=log_file,
            pass_fds=(write,),
            preexec_fn=dies_with_parent(),  # a killed test run leaves no server
        )
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)  # the child's copy is the only one left: its exit is our EOF
    return process, read


def wait_ready(process: subprocess.Popen[bytes], ready: int, log: Path, timeout_s: float) -> int:
    """Block until the server `launch`ed writes its port on `ready` (it serves: the system
    started, /readyz answers 200), and return that port; closes `ready`. If it exits first
    (end of file on the pipe) or `timeout_s` passes, it is killed and the error quotes its log.
    No polling: the wait ends the moment it serves."""
    deadline = time.monotonic() + timeout_s
    said = b""
    try:
        while not said.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([ready], [], [], left)[0]:
                break  # the time is up
            chunk = os.read(ready, 64)
            if not chunk:
                break  # it exited, or closed the pipe without serving
            said += chunk
    finally:
        os.close(ready)
    if said.endswith(b"\n") and said.strip().isdigit():
        return int(said)
    process.kill()
    process.wait(timeout=10)
    text = log.read_text() if log.exists() else ""
    raise AssertionError(f"server did not become ready: {text[-2000:]}")


POLL_FIRST_S = 0.005  # the first pause of a poll: a path's message is often through by then
POLL_MAX_S = 0.05  # pauses double up to this


def _pause(polls: int) -> None:
    """The pause after the `polls`-th look: 5 ms, doubling to 50 ms. A wait asks again soon
    after it starts, when the answer most often changes, and backs off from there, so a long
    wait (a window that closes, a loaded machine) asks no more often than a fixed 50 ms did."""
    time.sleep(min(POLL_FIRST_S * 2.0**polls, POLL_MAX_S))


def _get(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
    """GET, once more on a new connection when the server closed the one used without an
    answer: uvicorn closes a keep-alive connection when its idle timer fires, and on a loaded
    machine a server's event loop can run that timer late, after a request already arrived on
    it. A GET changes nothing, so asking again is safe (a POST is never repeated)."""
    import httpx

    try:
        return client.get(url, **kwargs)
    except httpx.RemoteProtocolError:
        return client.get(url, **kwargs)


def wait_for(client: httpx.Client, url: str, headers: dict[str, str], timeout_s: float) -> httpx.Response:
    """GET `url` until it is not a 404, or the time is up; the last answer."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while True:
        response = _get(client, url, headers=headers)
        if response.status_code != 404 or time.monotonic() > deadline:
            return response
        _pause(polls)
        polls += 1


def metrics(client: httpx.Client, samples: list[str], headers: dict[str, str]) -> list[float]:
    """The values of Prometheus samples, `name{labels}` as /metrics shows them (0 when absent),
    in one request that asks only for their names (`?name[]=`): the whole text of a system of
    100 components is ~160 kB, which the server takes tens of milliseconds to write."""
    names = sorted({sample.partition("{")[0] for sample in samples})
    answer = _get(client, "/metrics", headers=headers, params={"name[]": names})
    assert answer.status_code == 200, answer.text
    values = dict.fromkeys(samples, 0.0)
    for line in answer.text.splitlines():
        for sample in samples:
            if line.startswith(f"{sample} "):
                values[sample] = float(line[len(sample) + 1 :])
    return [values[sample] for sample in samples]


def metric(client: httpx.Client, sample: str, headers: dict[str, str]) -> float:
    """The value of one Prometheus sample, `name{labels}` as /metrics shows it; 0 when absent."""
    return metrics(client, [sample], headers)[0]


def _received_sample(system: str, component: str) -> str:
    return f'{system}_messages_received_total{{component="{component}"}}'


def received(client: httpx.Client, system: str, component: str, headers: dict[str, str]) -> float:
    """How many messages `component` has taken in so far (its `_messages_received_total`)."""
    return metric(client, _received_sample(system, component), headers)


def wait_received(
    client: httpx.Client, system: str, component: str, headers: dict[str, str], above: float, timeout_s: float
) -> float:
    """Poll `received` until it exceeds `above`, or the time is up; the last count."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while True:
        count = received(client, system, component, headers)
        if count > above or time.monotonic() > deadline:
            return count
        _pause(polls)
        polls += 1


def wait_settled(
    client: httpx.Client,
    system: str,
    headers: dict[str, str],
    trace: str,
    end: str,
    above: float,
    timeout_s: float,
) -> None:
    """Wait (at most `timeout_s`) until the message sent under `trace` is done with as far as a
    test can tell from outside: `end` took in more than `above` messages, or it was
    dead-lettered, or nothing accepted is left unprocessed (a filter dropped it, a router sent
    it elsewhere). One request reads both counts; the dead letters are read only while neither
    says so."""
    deadline = time.monotonic() + timeout_s
    samples = [_received_sample(system, end), f"{system}_inbox_backlog"]
    polls = 0
    while time.monotonic() < deadline:
        count, backlog = metrics(client, samples, headers)
        if count > above or backlog == 0:
            return
        if any(letter["trace_id"] == trace for letter in dead_letters(client, headers)):
            return
        _pause(polls)
        polls += 1


def check_path(
    system: httpx.Client,
    *,
    name: str,
    start: str,
    end: str,
    components: list[str],
    headers: dict[str, str],
    routes: list[tuple[str, str, str, dict[str, Any]]],
    records: list[tuple[str, str, float]],
    arrives: bool,
    wait_s: float,
) -> None:
    """The body of every generated path test (tests/paths/test_<start>__<end>.py), here once
    rather than in each of them: type-checking the same code in every path test cost the
    system's type check a second at 100 components. Posts each route's body under one trace
    id (nothing when the start is a source: then anything `start` sends counts), checks each
    record `end` must hold by its key, waits until the message reached `end` (`arrives`) or
    was done with, and fails on any dead letter of `components` for it."""
    trace = f"path-{uuid.uuid4().hex}"
    # a source may have sent all it will before this test began: then anything at all counts
    before = received(system, name, end, headers) if routes else 0.0
    sent: dict[str, dict[str, Any]] = {}
    for method, path, _auth, body in routes:
        response = system.request(method, path, json=body, headers={**headers, "X-Trace-Id": trace})
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": True, "trace_id": trace}
        sent[path] = body
    if not routes:
        assert wait_received(system, name, start, headers, 0.0, wait_s) > 0, f"{start} sent nothing"
    for path, key, wait in records:
        record = wait_for(system, f"/{end}/{sent[path][key]}", headers, wait)
        assert record.status_code == 200, record.text
        assert record.json()[key] == sent[path][key], f"{end} holds {record.json()!r} under the key"
    if arrives:
        assert wait_received(system, name, end, headers, before, wait_s) > before, f"nothing reached {end}"
    else:
        wait_settled(system, name, headers, trace, end, before, wait_s)
    letters = [
        letter
        for letter in dead_letters(system, headers)
        if letter["component"] in components and (letter["trace_id"] == trace or not routes)
    ]
    assert not letters, letters


@dataclasses.dataclass(frozen=True)
class PathCase:
    """One path test's arguments to `check_path` (a generated path test's constants)."""

    name: str
    start: str
    end: str
    components: list[str]
    headers: dict[str, str]
    routes: list[tuple[str, str, str, dict[str, Any]]]
    records: list[tuple[str, str, float]]
    arrives: bool
    wait_s: float


def check_paths(system: httpx.Client, cases: list[PathCase]) -> list[str | None]:
    """`check_path` of several paths in one round, for the build's path tests (issue 13): each
    case's messages are posted under a trace id of its own, then all of them are waited for at
    once (one /metrics request per poll reads every end), so the cases' waits overlap instead of
    following each other. Per case, None when it passed, else why it failed.

    The cases must post the same messages (the same routes and bodies: paths from one start),
    have distinct ends, and share the system and headers; a source's path (no routes) waits for
    the source, with `check_path`. Each case is checked as `check_path` checks it, never less:
    its records by key; its end's received count, where every message must arrive, up by at
    least one per case (the cases' messages are alike, so each goes wherever one goes: every
    one of them, this case's too, reached the end), else until it is done with; no dead letter
    of its components under its trace (read once every case is done with: later than
    check_path reads it, so it sees at least as much). A post that fails ends the round: every
    case is then reported unchecked (to be checked alone)."""
    if not cases:
        return []
    first = cases[0]
    if any((c.name, c.headers, c.routes) != (first.name, first.headers, first.routes) for c in cases):
        raise ValueError("check_paths: the cases need the same system, headers and routes")
    if not first.routes or len({c.end for c in cases}) != len(cases):
        raise ValueError("check_paths: the cases need routes, and each an end of its own")
    traces = [f"path-{uuid.uuid4().hex}" for _ in cases]
    befores = metrics(system, [_received_sample(first.name, c.end) for c in cases], first.headers)
    sent: list[dict[str, dict[str, Any]]] = [{} for _ in cases]
    for index, case in enumerate(cases):
        problem = _post_case(system, case, traces[index], sent[index])
        if problem is not None:
            return [
                problem if i == index else "not checked: another path's post failed"
                for i in range(len(cases))
            ]
    problems = [_check_records(system, case, sent[index]) for index, case in enumerate(cases)]
    _wait_cases(system, cases, traces, [before + len(cases) - 1 for before in befores], problems)
    letters = dead_letters(system, first.headers)
    for index, case in enumerate(cases):
        found = [x for x in letters if x["component"] in case.components and x["trace_id"] == traces[index]]
        if problems[index] is None and found:
            problems[index] = repr(found)
    return problems


def _post_case(
    system: httpx.Client, case: PathCase, trace: str, sent: dict[str, dict[str, Any]]
) -> str | None:
    """Post each of the case's routes' bodies under `trace` (check_path's posts); why not."""
    for method, path, _auth, body in case.routes:
        response = system.request(method, path, json=body, headers={**case.headers, "X-Trace-Id": trace})
        if response.status_code != 202:
            return response.text
        if response.json() != {"accepted": True, "trace_id": trace}:
            return f"{path} answered {response.text}"
        sent[path] = body
    return None


def _check_records(system: httpx.Client, case: PathCase, sent: dict[str, dict[str, Any]]) -> str | None:
    """The records the case's end must hold, each by its key (check_path's records); why not."""
    for path, key, wait in case.records:
        record = wait_for(system, f"/{case.end}/{sent[path][key]}", case.headers, wait)
        if record.status_code != 200:
            return record.text
        if record.json()[key] != sent[path][key]:
            return f"{case.end} holds {record.json()!r} under the key"
    return None


def _wait_cases(
    system: httpx.Client,
    cases: list[PathCase],
    traces: list[str],
    above: list[float],
    problems: list[str | None],
) -> None:
    """Until every case still passing is done with, each within its own `wait_s` from now:
    its end's count above `above` (a case that `arrives` fails without it), or, for one that
    may be stopped on the way, the inbox empty or its trace dead-lettered (as `wait_received`
    and `wait_settled` wait for one)."""
    name, headers = cases[0].name, cases[0].headers
    deadlines = {i: time.monotonic() + c.wait_s for i, c in enumerate(cases) if problems[i] is None}
    polls = 0
    while deadlines:  # each look ends the cases whose time is up: bounded by the longest wait_s
        waiting = sorted(deadlines)
        samples = [_received_sample(name, cases[i].end) for i in waiting]
        *counts, backlog = metrics(system, [*samples, f"{name}_inbox_backlog"], headers)
        lettered: set[str] | None = None
        for index, count in zip(waiting, counts, strict=True):
            case = cases[index]
            done = count > above[index] or (not case.arrives and backlog == 0)
            if not done and not case.arrives:
                if lettered is None:
                    lettered = {x["trace_id"] for x in dead_letters(system, headers)}
                done = traces[index] in lettered
            if done or time.monotonic() > deadlines[index]:
                del deadlines[index]
                if not done and case.arrives:
                    problems[index] = f"nothing reached {case.end}"
        if deadlines:
            _pause(polls)
            polls += 1


def dead_letters(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every dead letter so far (page by page)."""
    items: list[dict[str, Any]] = []
    while True:
        page = _get(client, "/dead-letters", headers=headers, params={"limit": 1000, "offset": len(items)})
        assert page.status_code == 200, page.text
        found = page.json()["items"]
        items.extend(found)
        if len(found) < 1000:
            return items


class Server:
    """`python -m <system> serve` as a child process on 127.0.0.1, its output in `log_path`;
    for tests that kill it (SIGKILL, SIGTERM) and start it again on the same data.

    `env` adds to (or, with a None value, removes from) this process's environment; DATA_DIR,
    API_KEY and PYTHONPATH come from the arguments."""

    def __init__(
        self,
        system: str,
        src: Path,
        data: Path,
        api_key: str,
        log_path: Path,
        env: dict[str, str | None] | None = None,
    ) -> None:
        self.system = system
        self.log_path = log_path
        self.env = {**os.environ, "DATA_DIR": str(data), "API_KEY": api_key, "PYTHONPATH": str(src)}
        for name, value in (env or {}).items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._ready: int | None = None  # the read end of a launched server's ready pipe
        data.mkdir(parents=True, exist_ok=True)

    def start(self, ready_timeout_s: float = 60.0) -> Server:
        """Start it (appending to its log) and wait until it serves (/readyz answers 200)."""
        self.launch()
        self.wait_ready(ready_timeout_s)
        return self

    def launch(self) -> None:
        """Start it without waiting (`wait_ready` waits): what the caller does meanwhile
        overlaps the server's start (its interpreter, imports, database)."""
        with self.log_path.open("a") as log_file:
            self.process, self._ready = launch(self.system, self.port, self.env, log_file)

    def wait_ready(self, ready_timeout_s: float = 60.0) -> None:
        """Until the server `launch`ed serves; if it exits first, or does not serve within
        `ready_timeout_s`, it is killed and AssertionError quotes its log."""
        if self.process is None or self._ready is None:
            raise RuntimeError("the server was not launched")
        ready, self._ready = self._ready, None
        wait_ready(self.process, ready, self.log_path, ready_timeout_s)

    def client(self, **kwargs: Any) -> httpx.Client:
        import httpx

        return httpx.Client(base_url=self.url, **{"timeout": 10, **kwargs})

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs at all."""
        return self._signal(signal.SIGKILL, 10)

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, the graceful stop; fails if the process outlives `timeout_s`."""
        return self._signal(signal.SIGTERM, timeout_s)

    def _signal(self, signum: int, timeout_s: float) -> int:
        process = self.process
        if process is None:
            raise RuntimeError("the server is not running")
        self.process = None
        process.send_signal(signum)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise AssertionError(f"server outlived signal {signum} by {timeout_s} s") from None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines whose message is `name` (every run of this server so far)."""
        found = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and entry.get("msg") == name:
                        found.append(entry)
        return found

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ready is not None:  # launched, never waited for
            os.close(self._ready)
            self._ready = None
        if self.process is not None:  # the test failed half-way: leave nothing running
            with contextlib.suppress(Exception):
                self.kill()
