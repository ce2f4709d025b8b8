"""The runtime's database on both backends, for real: an SQLite file under a temp directory and
a database of its own on the session's PostgreSQL server (tests/conftest.py). The same tests
run on each: the inbox (add, claim with a lease, renew, release, ack, to dead letters), dead
letters (add, list, count, replay), store records and aggregator windows, group commit with
one failing write, and several "replicas" claiming from one inbox at once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from autocoder_runtime.database import Database, DatabaseUnavailable, InboxItem, open_database
from autocoder_runtime.settings import ConfigError
from autocoder_runtime.testing import time_limit

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def target(request, tmp_path) -> tuple[str, str | None, Path]:
    """(backend, DSN, data dir) of an empty database."""
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("postgres_dsn"), tmp_path
    return "sqlite", None, tmp_path


@pytest.fixture
def opener(target) -> Iterator[Callable[[], Database]]:
    """Opens databases on the test's target (several: replicas); closes them all at the end."""
    backend, dsn, data = target
    opened: list[Database] = []

    def open_one() -> Database:
        database = open_database(backend, "durable", data, dsn)
        opened.append(database)
        return database

    with time_limit(60):
        yield open_one
    for database in opened:
        database.close()


@pytest.fixture
def db(opener) -> Database:
    return opener()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def item(n: int, direction: str = "out") -> InboxItem:
    return InboxItem("api", "out", direction, f'{{"n": {n}}}', f"trace-{n}")


# --------------------------------------------------------------------------- the inbox


def test_inbox_add_claim_ack(db):
    async def body() -> None:
        ids = await db.inbox_add([item(n) for n in range(5)])
        assert ids == sorted(ids) and len(set(ids)) == 5
        assert await db.inbox_count() == 5
        first = await db.inbox_claim("a", 3, 30)
        assert [r.id for r in first] == ids[:3]  # oldest first
        assert [r.item for r in first] == [item(n) for n in range(3)]
        assert {r.attempts for r in first} == {1}
        rest = await db.inbox_claim("b", 10, 30)  # leased rows are not claimed again
        assert [r.id for r in rest] == ids[3:]
        assert await db.inbox_claim("c", 10, 30) == []
        await db.inbox_ack([r.id for r in first])
        assert await db.inbox_count() == 2
        await db.inbox_ack([ids[0]])  # acknowledging twice is harmless
        assert await db.inbox_count() == 2

    run(body())


def test_inbox_lease_expiry_renew_and_release(db):
    async def body() -> None:
        ids = await db.inbox_add([item(n) for n in range(3)])
        claimed = await db.inbox_claim("a", 3, 0.2)
        assert [r.id for r in claimed] == ids
        await db.inbox_renew("a", [ids[0]], 30)  # a owner keeps what it renews
        await db.inbox_renew("b", [ids[1]], 30)  # and nobody else can renew it
        await asyncio.sleep(0.3)
        again = await db.inbox_claim("b", 10, 30)  # expired leases are delivered again
        assert [r.id for r in again] == ids[1:]
        assert [r.attempts for r in again] == [2, 2]
        await db.inbox_release("b")  # b gives its entries back: claimable at once
        back = await db.inbox_claim("c", 10, 30)
        assert [r.id for r in back] == ids[1:]
        assert [r.attempts for r in back] == [3, 3]
        await db.inbox_release(None)  # everything, whoever held it
        assert [r.id for r in await db.inbox_claim("d", 10, 30)] == ids

    run(body())


def test_inbox_entry_to_dead_letters(db):
    async def body() -> None:
        (row_id,) = await db.inbox_add([item(7)])
        (row,) = await db.inbox_claim("a", 1, 30)
        assert row.id == row_id
        await db.inbox_to_dead_letter(row, "delivered too often")
        assert await db.inbox_count() == 0
        (letter,) = await db.dead_letter_list(10, 0)
        assert letter[2:] == ("api", "out", "delivered too often", '{"n": 7}', "trace-7")

    run(body())


def test_replicas_claim_disjoint_rows(opener):
    """Four databases (as four replicas would) claim from one inbox at once: every entry is
    claimed exactly once."""
    replicas = [opener() for _ in range(4)]
    total = 400

    async def body() -> None:
        await replicas[0].inbox_add([item(n) for n in range(total)])

        async def drain(db: Database, owner: str) -> list[int]:
            got: list[int] = []
            while True:
                rows = await db.inbox_claim(owner, 7, 60)
                if not rows:
                    return got
                got += [r.id for r in rows]

        claims = await asyncio.gather(*(drain(db, f"r{i}") for i, db in enumerate(replicas)))
        every = [row_id for claim in claims for row_id in claim]
        assert len(every) == total and len(set(every)) == total
        assert await replicas[1].inbox_count() == total

    run(body())


# --------------------------------------------------------------------------- dead letters


def test_dead_letters_add_list_count_replay(db):
    async def body() -> None:
        for n in range(4):
            await db.dead_letter_add("divide", "in", f"boom {n}", f'{{"n": {n}}}', f"t{n}")
        await db.dead_letter_add("gone", "in", "no such component now", "{}", "t9")
        assert await db.dead_letter_count() == 5
        rows = await db.dead_letter_list(2, 1)
        assert [r[4] for r in rows] == ["boom 1", "boom 2"]
        assert isinstance(rows[0][0], int) and isinstance(rows[0][1], float)
        ids = [r[0] for r in await db.dead_letter_list(10, 0)]

        def replayable(component: str, port: str) -> bool:
            return component == "divide"

        assert await db.dead_letter_replay([ids[0], ids[2], ids[4]], replayable) == 2
        assert await db.dead_letter_count() == 3
        claimed = await db.inbox_claim("a", 10, 30)
        assert [(r.item.direction, r.item.payload, r.item.trace_id) for r in claimed] == [
            ("in", '{"n": 0}', "t0"),
            ("in", '{"n": 2}', "t2"),
        ]
        assert await db.dead_letter_replay(None, replayable) == 2  # the rest of divide's
        assert [r[2] for r in await db.dead_letter_list(10, 0)] == ["gone"]

    run(body())


# --------------------------------------------------------------------------- store records


def test_records_put_get_list(db):
    async def body() -> None:
        for key in ("b", "a", "c", "ü-ключ"):
            await db.record_put("orders", key, f'{{"id": "{key}", "v": 1}}')
        await db.record_put("orders", "a", '{"id": "a", "v": 2}')  # by key: overwrite
        await db.record_put("other", "a", '{"other": true}')  # stores are separate
        assert await db.record_get("orders", "a") == '{"id": "a", "v": 2}'
        assert await db.record_get("orders", "zz") is None
        assert await db.record_get("other", "a") == '{"other": true}'
        listed = await db.record_list("orders", 10, 0)
        assert len(listed) == 4 and listed[0] == '{"id": "a", "v": 2}'
        assert await db.record_list("orders", 2, 1) == listed[1:3]
        assert await db.record_list("orders", 10, 10) == []

    run(body())


# --------------------------------------------------------------------------- aggregator windows


def test_windows_put_load_close(db):
    async def body() -> None:
        before = time.time()
        await db.window_put("agg", 3600.0, '"k1"', '{"n": 1}')
        await asyncio.sleep(0.01)
        await db.window_put("agg", 3600.0, '"k2"', '{"n": 1}')
        await db.window_put("agg", 0.5, '"k0"', '{"n": 5}')
        await db.window_put("agg", 3600.0, '"k1"', '{"n": 2}')  # update keeps first_seen
        await db.window_put("other", 3600.0, '"k1"', '{"n": 9}')
        loaded = await db.window_load("agg")
        assert [(start, key, state) for start, key, state, _ in loaded] == [
            (0.5, '"k0"', '{"n": 5}'),
            (3600.0, '"k1"', '{"n": 2}'),
            (3600.0, '"k2"', '{"n": 1}'),
        ]
        # first_seen keeps sub-second precision (orders keys within a window)
        assert all(abs(first - before) < 5 for *_, first in loaded)
        assert loaded[1][3] < loaded[2][3]
        out = InboxItem("agg", "out", "out", '{"seen": 2}', "w1")
        await db.window_close("agg", 3600.0, ['"k1"'], [out])
        assert [key for _, key, _, _ in await db.window_load("agg")] == ['"k0"', '"k2"']
        (row,) = await db.inbox_claim("a", 10, 30)
        assert row.item == out
        assert len(await db.window_load("other")) == 1

    run(body())


# --------------------------------------------------------------------------- group commit


def test_a_failing_write_fails_alone_in_its_group(db):
    """Writes queued behind a slow one commit together; one that breaks a constraint fails
    alone (the group is redone with a savepoint per write) and the rest commit."""
    gate = threading.Event()
    bad = db.dialect.sql("INSERT INTO records (store, key, value, updated) VALUES (?, ?, NULL, 0)")

    async def body() -> None:
        blocker = asyncio.ensure_future(db.write(lambda _: gate.wait(10)))
        await asyncio.sleep(0.05)  # the writer thread is inside the blocker's transaction
        commits = db.commits
        goods = [asyncio.ensure_future(db.record_put("s", f"k{n}", "{}")) for n in range(20)]
        failing = asyncio.ensure_future(db.write(lambda c: c.execute(bad, ("s", "bad"))))
        more = [asyncio.ensure_future(db.inbox_add([item(n)])) for n in range(5)]
        await asyncio.sleep(0.05)
        gate.set()
        assert await blocker
        await asyncio.gather(*goods, *more)
        with pytest.raises(Exception, match="(?i)null"):
            await failing
        assert db.commits - commits <= 2  # the blocker's transaction, then the group's
        assert len(await db.record_list("s", 100, 0)) == 20
        assert await db.record_get("s", "bad") is None
        assert await db.inbox_count() == 5

    run(body())


def test_replicas_opening_a_new_database_at_once(target):
    """Six processes' worth of databases open (and so create the schema) at the same moment:
    none fails (PostgreSQL's CREATE TABLE IF NOT EXISTS races with itself without a lock)."""
    backend, dsn, data = target
    opened: list[Database] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        start.wait(10)
        try:
            opened.append(open_database(backend, "durable", data, dsn))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    with time_limit(60):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    try:
        assert errors == []
        assert run(opened[0].inbox_count()) == 0
    finally:
        for database in opened:
            database.close()


@pytest.mark.parametrize(("setting", "level"), [(None, 2), ("normal", 1), ("FULL", 2), ("EXTRA", 3)])
def test_sqlite_synchronous_setting(setting, level, tmp_path, monkeypatch):
    """FULL unless SQLITE_SYNCHRONOUS says otherwise (benchmarks/ingress_bench.py compares)."""
    if setting is None:
        monkeypatch.delenv("SQLITE_SYNCHRONOUS", raising=False)
    else:
        monkeypatch.setenv("SQLITE_SYNCHRONOUS", setting)
    database = open_database("sqlite", "durable", tmp_path, None)
    try:
        assert run(database.read(lambda db: db.execute("PRAGMA synchronous").fetchone()[0])) == level
    finally:
        database.close()


def test_sqlite_synchronous_off_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(ConfigError, match="SQLITE_SYNCHRONOUS='OFF'"):
        open_database("sqlite", "durable", tmp_path, None)


def test_postgres_connection_lost_then_made_anew(postgres_dsn, tmp_path):
    """The server ends the database's sessions (a restart, a failover): the write caught in it
    fails as DatabaseUnavailable (not the message's fault: never dead-lettered), the next
    write uses a new connection, and reads reconnect by themselves."""
    import psycopg

    database = open_database("postgres", "durable", tmp_path, postgres_dsn)

    async def body() -> None:
        await database.record_put("s", "before", "{}")
        assert await database.record_get("s", "before") == "{}"  # a reader connection exists
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(DatabaseUnavailable):
            await database.record_put("s", "during", "{}")
        await database.record_put("s", "after", "{}")
        assert await database.record_get("s", "after") == "{}"
        assert await database.record_get("s", "during") is None

    try:
        with time_limit(60):
            run(body())
    finally:
        database.close()
