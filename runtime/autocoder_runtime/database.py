"""The system's database: durable inbox, dead letters, store records and aggregator windows.

One database per system, SQLite (WAL, under DATA_DIR) or PostgreSQL (DATABASE_URL), so that an
accepted message, the records it produces and its removal from the inbox live in one place.

No database call runs on the event loop. Writes go to one writer thread that commits them in
groups: every write queued while the previous transaction ran shares the next one, so a burst
of ingress requests costs one commit, not one each. A write that fails (a constraint, a value
the driver refuses) fails alone: the batch is replayed with a savepoint per write. Reads run on
a small pool of reader threads with their own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from autocoder_runtime.logs import log
from autocoder_runtime.settings import ConfigError

T = TypeVar("T")
MAX_BATCH = 512  # writes in one group commit
# SQLite's PRAGMA synchronous, from $SQLITE_SYNCHRONOUS. FULL (the default): a 202 survives a
# power loss too. NORMAL: it survives the process being killed, not the machine losing power
# (WAL is synced at checkpoints only). benchmarks/ingress_bench.py measures both.
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")


class Cursor(Protocol):
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class Connection(Protocol):
    """What both drivers' connections offer (sqlite3 and psycopg, in autocommit mode)."""

    def execute(self, sql: Any, params: Any = ...) -> Any: ...
    def close(self) -> None: ...


Operation = Callable[[Connection], T]


@dataclass(frozen=True)
class InboxItem:
    """A message to deliver: from `component`'s output `port` (direction "out": to everything
    bound to it) or into `component`'s input `port` (direction "in": a replayed dead letter)."""

    component: str
    port: str
    direction: str
    payload: str
    trace_id: str


class DatabaseUnavailable(Exception):
    """The database could not be reached, or the connection broke under a write: nothing about
    the message is wrong, so it is not dead-lettered; its inbox entry is delivered again."""


def _unavailable(exc: BaseException) -> DatabaseUnavailable:
    if isinstance(exc, DatabaseUnavailable):
        return exc
    error = DatabaseUnavailable(f"{type(exc).__name__}: {exc}"[:500])
    error.__cause__ = exc
    return error


@dataclass(frozen=True)
class InboxRow:
    id: int
    item: InboxItem
    attempts: int


class Dialect:
    """What differs between SQLite and PostgreSQL: connecting, placeholders, DDL, locking."""

    name = "sqlite"
    claim = (
        "UPDATE inbox SET owner = ?, lease_until = ?, attempts = attempts + 1 WHERE id IN "
        "(SELECT id FROM inbox WHERE lease_until IS NULL OR lease_until < ? ORDER BY id LIMIT ?) "
        "RETURNING id, component, port, direction, payload, trace_id, attempts"
    )

    def __init__(self, target: str) -> None:
        self.target = target

    def connect(self) -> Connection:
        synchronous = os.environ.get("SQLITE_SYNCHRONOUS", "FULL").strip().upper()
        if synchronous not in SQLITE_SYNCHRONOUS:
            raise ConfigError(
                f"SQLITE_SYNCHRONOUS={synchronous!r} is not one of {', '.join(SQLITE_SYNCHRONOUS)}; "
                "fix: unset it (FULL) or set NORMAL"
            )
        db = sqlite3.connect(self.target, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("PRAGMA busy_timeout=30000")
        return db

    def sql(self, text: str) -> str:
        return text

    def begin(self) -> str:
        return "BEGIN IMMEDIATE"

    def ddl_lock(self) -> list[str]:
        """Statements that make concurrent schema creation wait for each other (SQLite's
        BEGIN IMMEDIATE already does)."""
        return []

    @contextlib.contextmanager
    def setup_lock(self) -> Iterator[None]:
        """Held while a process turns on WAL and creates the schema. Switching a new file to WAL
        answers "database is locked" at once, without waiting on busy_timeout, when another
        connection switches it at the same moment; a file lock beside the database makes
        replicas starting together take turns."""
        with open(f"{self.target}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def broken(self, connection: Connection) -> bool:
        """Whether the connection is lost for good (a new one is needed); an SQLite file's
        never is."""
        return False

    def ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, component TEXT NOT NULL, "
            "port TEXT NOT NULL, direction TEXT NOT NULL, payload TEXT NOT NULL, trace_id TEXT NOT NULL, "
            "accepted REAL NOT NULL, owner TEXT, lease_until REAL, attempts INTEGER NOT NULL DEFAULT 0)",
            *self._common_ddl("INTEGER PRIMARY KEY AUTOINCREMENT", "REAL"),
        ]

    @staticmethod
    def _common_ddl(serial: str, real: str) -> list[str]:
        return [
            "CREATE INDEX IF NOT EXISTS inbox_lease ON inbox (lease_until, id)",
            f"CREATE TABLE IF NOT EXISTS dead_letters (id {serial}, ts {real} NOT NULL, "
            "component TEXT NOT NULL, port TEXT NOT NULL, error TEXT NOT NULL, payload TEXT NOT NULL, "
            "trace_id TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS records (store TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
            f"updated {real} NOT NULL, PRIMARY KEY (store, key))",
            f"CREATE TABLE IF NOT EXISTS windows (component TEXT NOT NULL, window_start {real} NOT NULL, "
            f"key TEXT NOT NULL, state TEXT NOT NULL, first_seen {real} NOT NULL, "
            "PRIMARY KEY (component, window_start, key))",
        ]


class PostgresDialect(Dialect):
    name = "postgres"
    claim = (  # SKIP LOCKED: replicas claim disjoint rows without waiting for each other
        "UPDATE inbox SET owner = ?, lease_until = ?, attempts = attempts + 1 WHERE id IN "
        "(SELECT id FROM inbox WHERE lease_until IS NULL OR lease_until < ? ORDER BY id LIMIT ? "
        "FOR UPDATE SKIP LOCKED) RETURNING id, component, port, direction, payload, trace_id, attempts"
    )

    def connect(self) -> Connection:
        try:
            import psycopg
        except ImportError:
            raise RuntimeError(
                "this system is configured for PostgreSQL but psycopg is not installed; "
                "fix: pip install 'autocoder-runtime[postgres]', or set store.backend: sqlite in deployment.yaml"
            ) from None
        connection: Connection = psycopg.connect(self.target, autocommit=True)
        return connection

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    @contextlib.contextmanager
    def setup_lock(self) -> Iterator[None]:
        """PostgreSQL serialises schema creation with an advisory lock (ddl_lock) instead."""
        yield

    def begin(self) -> str:
        return "BEGIN"

    def ddl_lock(self) -> list[str]:
        # CREATE TABLE IF NOT EXISTS is not safe against itself running in another session
        # (a unique violation in pg_type): one lock for every replica of every system
        return ["SELECT pg_advisory_xact_lock(4242000017)"]

    def broken(self, connection: Connection) -> bool:
        # the server restarted, failed over, or ended the session: psycopg marks it closed
        return bool(getattr(connection, "broken", False) or getattr(connection, "closed", False))

    def ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS inbox (id BIGSERIAL PRIMARY KEY, component TEXT NOT NULL, "
            "port TEXT NOT NULL, direction TEXT NOT NULL, payload TEXT NOT NULL, trace_id TEXT NOT NULL, "
            "accepted DOUBLE PRECISION NOT NULL, owner TEXT, lease_until DOUBLE PRECISION, "
            "attempts INTEGER NOT NULL DEFAULT 0)",
            *self._common_ddl("BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION"),
        ]


# --------------------------------------------------------------------------- the writer thread


class _Stop:
    pass


_STOP = _Stop()


@dataclass
class _Write:
    operation: Operation[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _settle(write: _Write, ok: bool, value: Any) -> None:
    def apply() -> None:
        if write.future.done():  # the caller was cancelled; the write happened anyway
            return
        if ok:
            write.future.set_result(value)
        else:
            write.future.set_exception(value)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        write.loop.call_soon_threadsafe(apply)


class Database:
    """Group-committed writes on one thread, reads on a pool; see the module docstring."""

    def __init__(self, dialect: Dialect, readers: int = 2) -> None:
        self.dialect = dialect
        self.writes: queue.SimpleQueue[_Write | _Stop] = queue.SimpleQueue()
        self.writer: threading.Thread | None = None
        self.reader_pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="db-read")
        self.local = threading.local()
        self.connections: list[Connection] = []
        self.lock = threading.Lock()
        self.commits = 0  # transactions committed (group commit: fewer than writes)
        self.written = 0  # writes asked for, failed ones included (testing.empty_database)

    # -- lifecycle

    def open(self) -> None:
        connection = self._schema()
        self.writer = threading.Thread(
            target=self._write_loop, args=(connection,), name="db-write", daemon=True
        )
        self.writer.start()

    def _schema(self) -> Connection:
        """A new connection, the tables created through it if they were not there yet."""
        with self.dialect.setup_lock():
            connection = self.dialect.connect()
            try:  # one transaction, so replicas starting together do not race to create the tables
                connection.execute(self.dialect.begin())
                for statement in [*self.dialect.ddl_lock(), *self.dialect.ddl()]:
                    connection.execute(statement)
                connection.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    connection.execute("ROLLBACK")
                connection.close()
                raise
        return connection

    def close(self) -> None:
        if self.writer is not None:
            self.writes.put(_STOP)
            self.writer.join()
            self.writer = None
        self.reader_pool.shutdown(wait=True)
        with self.lock:
            for connection in self.connections:
                with contextlib.suppress(Exception):
                    connection.close()
            self.connections.clear()

    # -- calls from the event loop

    async def write(self, operation: Operation[T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self.writer is None:
            raise RuntimeError("the database is not open")
        self.written += 1
        self.writes.put(_Write(operation, future, loop))
        return await future

    async def read(self, operation: Operation[T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.reader_pool, self._read, operation)

    def _read(self, operation: Operation[T]) -> T:
        connection = self._reader()
        try:
            return operation(connection)
        except Exception:
            if not self.dialect.broken(connection):
                raise
        # the connection was lost: a read is safe to repeat, once, on a new one
        return operation(self._reader())

    def _reader(self) -> Connection:
        """This reader thread's connection, made anew when it is missing or lost."""
        connection: Connection | None = getattr(self.local, "connection", None)
        if connection is not None and self.dialect.broken(connection):
            with self.lock:
                self.connections.remove(connection)
            with contextlib.suppress(Exception):
                connection.close()
            connection = None
        if connection is None:
            connection = self.dialect.connect()
            self.local.connection = connection
            with self.lock:
                self.connections.append(connection)
        return connection

    # -- the writer

    def _write_loop(self, first_connection: Connection) -> None:
        connection: Connection | None = first_connection
        try:
            while True:
                first = self.writes.get()
                if isinstance(first, _Stop):
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        item = self.writes.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(item, _Stop):
                        stop = True
                        break
                    batch.append(item)
                connection = self._commit(connection, batch)
                if stop:
                    return
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()

    def _commit(self, connection: Connection | None, batch: list[_Write]) -> Connection | None:
        """`_apply` the batch and settle each write's future with its result; returns the
        connection to use next."""
        connection, results = self._apply(connection, [write.operation for write in batch])
        for write, (ok, value) in zip(batch, results, strict=True):
            _settle(write, ok, value)
        return connection

    def _apply(
        self, connection: Connection | None, operations: list[Operation[Any]]
    ) -> tuple[Connection | None, list[tuple[bool, Any]]]:
        """One transaction for the operations; if any fails, redo them with a savepoint each so
        that only the failing ones fail. A lost connection (PostgreSQL restarted, say) fails
        its batch and is replaced for the next one. The connection to use next, and per
        operation (True, its result) or (False, its exception)."""
        if connection is not None and self.dialect.broken(connection):
            with contextlib.suppress(Exception):
                connection.close()
            connection = None
        if connection is None:
            try:
                connection = self.dialect.connect()
            except Exception as exc:  # noqa: BLE001 - no database now: these writes fail, later ones retry
                log(logging.ERROR, "database unreachable", error=f"{type(exc).__name__}: {exc}")
                return None, [(False, _unavailable(exc))] * len(operations)
            log(logging.WARNING, "database connection made anew")
        try:
            results = self._transaction(connection, operations, savepoints=False)
        except _WriteFailed:
            try:
                results = self._transaction(connection, operations, savepoints=True)
            except Exception as exc:  # noqa: BLE001 - the commit itself failed: every write fails
                results = [(False, exc)] * len(operations)
        except Exception as exc:  # noqa: BLE001 - the database is unusable: every write fails
            log(logging.ERROR, "database write failed", error=f"{type(exc).__name__}: {exc}")
            results = [(False, exc)] * len(operations)
        if self.dialect.broken(connection):  # the failures are the connection's, not the writes'
            results = [(ok, value if ok else _unavailable(value)) for ok, value in results]
        return connection, results

    def _transaction(
        self, connection: Connection, operations: list[Operation[Any]], savepoints: bool
    ) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = []
        connection.execute(self.dialect.begin())
        try:
            for operation in operations:
                if not savepoints:
                    try:
                        results.append((True, operation(connection)))
                    except Exception as exc:
                        raise _WriteFailed from exc
                    continue
                connection.execute("SAVEPOINT w")
                try:
                    results.append((True, operation(connection)))
                    connection.execute("RELEASE SAVEPOINT w")
                except Exception as exc:  # noqa: BLE001 - this write fails alone
                    connection.execute("ROLLBACK TO SAVEPOINT w")
                    connection.execute("RELEASE SAVEPOINT w")
                    results.append((False, exc))
            connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                connection.execute("ROLLBACK")
            raise
        self.commits += 1
        return results

    # ----------------------------------------------------------------- the inbox

    async def inbox_add(self, items: Iterable[InboxItem]) -> list[int]:
        rows = list(items)
        sql = self.dialect.sql(
            "INSERT INTO inbox (component, port, direction, payload, trace_id, accepted) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
        )

        def insert(db: Connection) -> list[int]:
            now = time.time()
            return [
                int(
                    db.execute(
                        sql, (i.component, i.port, i.direction, i.payload, i.trace_id, now)
                    ).fetchone()[0]
                )
                for i in rows
            ]

        return await self.write(insert)

    async def inbox_claim(self, owner: str, limit: int, lease_s: float) -> list[InboxRow]:
        """Take up to `limit` unclaimed (or expired) entries, oldest first, for `lease_s`."""
        sql = self.dialect.sql(self.dialect.claim)

        def claim(db: Connection) -> list[InboxRow]:
            now = time.time()
            rows = db.execute(sql, (owner, now + lease_s, now, limit)).fetchall()
            return sorted(
                (InboxRow(int(r[0]), InboxItem(r[1], r[2], r[3], r[4], r[5]), int(r[6])) for r in rows),
                key=lambda row: row.id,
            )

        return await self.write(claim)

    async def inbox_renew(self, owner: str, ids: list[int], lease_s: float) -> None:
        sql = self.dialect.sql("UPDATE inbox SET lease_until = ? WHERE id = ? AND owner = ?")

        def renew(db: Connection) -> None:
            until = time.time() + lease_s
            for i in ids:
                db.execute(sql, (until, i, owner))

        await self.write(renew)

    async def inbox_release(self, owner: str | None) -> None:
        """Give claimed entries back (all of them when `owner` is None: a restart of the only
        replica of an SQLite system)."""
        sql = "UPDATE inbox SET owner = NULL, lease_until = NULL"
        params: tuple[str, ...] = ()
        if owner is not None:
            sql, params = self.dialect.sql(sql + " WHERE owner = ?"), (owner,)
        await self.write(lambda db: db.execute(sql, params))

    async def inbox_ack(self, ids: list[int]) -> None:
        sql = self.dialect.sql("DELETE FROM inbox WHERE id = ?")

        def ack(db: Connection) -> None:
            for i in ids:
                db.execute(sql, (i,))

        await self.write(ack)

    async def inbox_count(self) -> int:
        return await self.read(lambda db: int(db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]))

    async def inbox_to_dead_letter(self, row: InboxRow, error: str) -> None:
        """An entry that was delivered too many times without completing (it crashes the
        process, say) leaves the inbox for the dead letters, in one transaction."""
        insert = self.dialect.sql(
            "INSERT INTO dead_letters (ts, component, port, error, payload, trace_id) VALUES (?, ?, ?, ?, ?, ?)"
        )
        delete = self.dialect.sql("DELETE FROM inbox WHERE id = ?")

        def move(db: Connection) -> None:
            item = row.item
            db.execute(insert, (time.time(), item.component, item.port, error, item.payload, item.trace_id))
            db.execute(delete, (row.id,))

        await self.write(move)

    # ----------------------------------------------------------------- dead letters

    async def dead_letter_add(
        self, component: str, port: str, error: str, payload: str, trace_id: str
    ) -> None:
        sql = self.dialect.sql(
            "INSERT INTO dead_letters (ts, component, port, error, payload, trace_id) VALUES (?, ?, ?, ?, ?, ?)"
        )
        await self.write(lambda db: db.execute(sql, (time.time(), component, port, error, payload, trace_id)))

    async def dead_letter_list(self, limit: int, offset: int) -> list[tuple[Any, ...]]:
        sql = self.dialect.sql(
            "SELECT id, ts, component, port, error, payload, trace_id FROM dead_letters ORDER BY id LIMIT ? OFFSET ?"
        )
        return await self.read(lambda db: [tuple(r) for r in db.execute(sql, (limit, offset)).fetchall()])

    async def dead_letter_count(self) -> int:
        return await self.read(lambda db: int(db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]))

    async def dead_letter_replay(self, ids: list[int] | None, replayable: Callable[[str, str], bool]) -> int:
        """Move dead letters (all, or those with these ids) back into the inbox, addressed to
        the input they failed on; returns how many moved. One transaction."""
        select = "SELECT id, component, port, payload, trace_id FROM dead_letters ORDER BY id"
        insert = self.dialect.sql(
            "INSERT INTO inbox (component, port, direction, payload, trace_id, accepted) VALUES (?, ?, 'in', ?, ?, ?)"
        )
        delete = self.dialect.sql("DELETE FROM dead_letters WHERE id = ?")
        wanted = None if ids is None else set(ids)

        def replay(db: Connection) -> int:
            moved = 0
            now = time.time()
            for row_id, component, port, payload, trace_id in db.execute(select).fetchall():
                if (wanted is None or row_id in wanted) and replayable(component, port):
                    db.execute(insert, (component, port, payload, trace_id, now))
                    db.execute(delete, (row_id,))
                    moved += 1
            return moved

        return await self.write(replay)

    # ----------------------------------------------------------------- store records

    async def record_put(self, store: str, key: str, value: str) -> None:
        sql = self.dialect.sql(
            "INSERT INTO records (store, key, value, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, updated = excluded.updated"
        )
        await self.write(lambda db: db.execute(sql, (store, key, value, time.time())))

    async def record_get(self, store: str, key: str) -> str | None:
        sql = self.dialect.sql("SELECT value FROM records WHERE store = ? AND key = ?")

        def get(db: Connection) -> str | None:
            row = db.execute(sql, (store, key)).fetchone()
            return None if row is None else str(row[0])

        return await self.read(get)

    async def record_list(self, store: str, limit: int, offset: int) -> list[str]:
        sql = self.dialect.sql("SELECT value FROM records WHERE store = ? ORDER BY key LIMIT ? OFFSET ?")
        return await self.read(
            lambda db: [str(r[0]) for r in db.execute(sql, (store, limit, offset)).fetchall()]
        )

    # ----------------------------------------------------------------- aggregator windows

    async def window_put(self, component: str, window_start: float, key: str, state: str) -> None:
        sql = self.dialect.sql(
            "INSERT INTO windows (component, window_start, key, state, first_seen) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (component, window_start, key) DO UPDATE SET state = excluded.state"
        )
        await self.write(lambda db: db.execute(sql, (component, window_start, key, state, time.time())))

    async def window_load(self, component: str) -> list[tuple[float, str, str, float]]:
        sql = self.dialect.sql(
            "SELECT window_start, key, state, first_seen FROM windows WHERE component = ? "
            "ORDER BY window_start, first_seen, key"
        )
        return await self.read(
            lambda db: [
                (float(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in db.execute(sql, (component,))
            ]
        )

    async def window_close(
        self, component: str, window_start: float, keys: list[str], outputs: list[InboxItem]
    ) -> None:
        """Emit a window's results and forget its state in one transaction: the results go to
        the inbox, so a crash either keeps the window or has its results queued, never both
        or neither."""
        delete = self.dialect.sql("DELETE FROM windows WHERE component = ? AND window_start = ? AND key = ?")
        insert = self.dialect.sql(
            "INSERT INTO inbox (component, port, direction, payload, trace_id, accepted) VALUES (?, ?, ?, ?, ?, ?)"
        )

        def close(db: Connection) -> None:
            now = time.time()
            for key in keys:
                db.execute(delete, (component, window_start, key))
            for i in outputs:
                db.execute(insert, (i.component, i.port, i.direction, i.payload, i.trace_id, now))

        await self.write(close)


def open_database(backend: str, system: str, data_dir: Path, dsn: str | None) -> Database:
    """The system's database: SQLite under `data_dir`, or PostgreSQL at `dsn`."""
    if backend == "postgres":
        if not dsn:
            raise ConfigError(
                "DATABASE_URL is not set; expected the DSN of this system's PostgreSQL database "
                "(deployment.yaml says store: {backend: postgres}); "
                "fix: export DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DBNAME"
            )
        database = Database(PostgresDialect(dsn))
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        database = Database(Dialect(str(data_dir / f"{system}.sqlite3")))
    database.open()
    return database


@contextlib.contextmanager
def opened(backend: str, system: str, data_dir: Path, dsn: str | None) -> Iterator[Database]:
    database = open_database(backend, system, data_dir, dsn)
    try:
        yield database
    finally:
        database.close()


class _WriteFailed(Exception):
    """A write failed inside a group transaction: redo the group with savepoints."""
