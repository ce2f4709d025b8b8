"""The test harness reuses one SQLite database per DATA_DIR (testing.empty_database), emptied
for each run: a run must find exactly what a freshly made database holds."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from autocoder_runtime.database import Database, Dialect, InboxItem
from autocoder_runtime.messages import Message, strict_json
from autocoder_runtime.testing import InlineDatabase, empty_database, release_databases, stored
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from rtkit import Items


def _rows(database) -> dict[str, list]:
    def read(connection):
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {t: connection.execute(f'SELECT * FROM "{t}"').fetchall() for (t,) in tables}

    return asyncio.run(database.read(read))


async def _fill(inline: bool = False):
    """A reused test database with a row of every kind (inbox, dead letter, record, window)."""
    database = await empty_database(inline=inline)
    await database.inbox_add([InboxItem("c", "out", "out", "{}", "t")] * 3)
    await database.dead_letter_add("c", "in", "boom", "{}", "t")
    await database.record_put("items", "k", "{}")
    await database.window_put("agg", 0.0, "k", "{}")
    return database


async def _again(inline: bool = False):
    """The same database emptied for the next run, and the id of its next inbox row."""
    database = await empty_database(inline=inline)
    ids = await database.inbox_add([InboxItem("c", "out", "out", "{}", "t")])
    return database, ids


def test_a_reused_database_is_empty_again_and_counts_from_one(data: Path):
    try:
        first = asyncio.run(_fill())
        assert all(_rows(first)[t] for t in ("inbox", "dead_letters", "records", "windows"))
        second, ids = asyncio.run(_again())
        assert second is first  # one file per DATA_DIR...
        assert ids == [1]  # ...whose AUTOINCREMENT starts again, as in a new file
        rows = _rows(second)
        assert rows["inbox"] and len(rows["inbox"]) == 1
        assert not any(rows[t] for t in ("dead_letters", "records", "windows"))
        assert len(list((data).glob("test-*.sqlite3"))) == 1
    finally:
        release_databases()


def test_each_data_dir_gets_its_own_database_and_release_closes_them(data: Path, tmp_path: Path, monkeypatch):
    try:
        assert stored(Items, "in", [{"id": "a", "n": 1}]).keys() == {"a"}
        assert stored(Items, "in", [{"id": "b", "n": 2}]).keys() == {"b"}  # nothing of the run before
        first = asyncio.run(empty_database())
        monkeypatch.setenv("DATA_DIR", str(tmp_path / "other"))
        second = asyncio.run(empty_database())
        assert second is not first
        assert first.writer is None  # a new DATA_DIR: the previous test's database was closed
    finally:
        release_databases()
    assert second.writer is None


def test_an_inline_database_is_emptied_of_every_table_it_filled(data: Path):
    """The test runs' database (InlineDatabase) empties only the tables an INSERT of its
    connections named: every kind of row still goes, and AUTOINCREMENT counts from 1 again."""

    try:
        first = asyncio.run(_fill(inline=True))
        tables = ("inbox", "dead_letters", "records", "windows", "sqlite_sequence")
        assert all(_rows(first)[t] for t in tables)
        second, ids = asyncio.run(_again(inline=True))
        assert second is first and ids == [1]
        rows = _rows(second)
        assert len(rows["inbox"]) == 1
        assert not any(rows[t] for t in ("dead_letters", "records", "windows"))
    finally:
        release_databases()


def test_an_inline_database_empties_what_a_store_run_left_and_only_that(data: Path):
    try:
        assert stored(Items, "in", [{"id": "a", "n": 1}]).keys() == {"a"}
        database = asyncio.run(empty_database(inline=True))
        assert database.filled == {"records"}  # the store's one table: one DELETE, not five
        assert not any(_rows(database).values())
        assert stored(Items, "in", [{"id": "b", "n": 2}]).keys() == {"b"}
    finally:
        release_databases()


def test_an_inline_database_whose_schema_changed_empties_every_table(data: Path):
    """A table made after the schema (no runtime code does; a write could): its rows go too."""

    def make_and_fill(connection):
        connection.execute("CREATE TABLE extra (x INTEGER)")
        connection.execute("INSERT INTO extra VALUES (1)")

    async def fill():
        database = await empty_database(inline=True)
        await database.write(make_and_fill)
        await database.read(lambda c: c.execute("INSERT INTO records VALUES ('s', 'k', '{}', 0)"))
        return database

    try:
        database = asyncio.run(fill())
        assert database.filled is None  # not known any more: every table is emptied
        assert _rows(database)["extra"] and _rows(database)["records"]
        asyncio.run(empty_database(inline=True))
        assert not any(_rows(database).values())
    finally:
        release_databases()


def test_an_insert_on_a_read_connection_is_emptied_too(data: Path):
    async def fill():
        database = await empty_database(inline=True)
        await database.read(lambda c: c.execute("INSERT INTO records VALUES ('s', 'k', '{}', 0)"))
        return database

    try:
        database = asyncio.run(fill())
        database.written += 1  # as a write would have counted: the next run empties it
        assert _rows(database)["records"]
        asyncio.run(empty_database(inline=True))
        assert not any(_rows(database).values())
    finally:
        release_databases()


PHASES = (Phase.explicit, Phase.generate, Phase.shrink)  # not explain: it traces every line, slowly


class Leaky(Items):
    """A broken store: it also writes every message under a second key."""

    async def aprocess(self, port: str, message: Message) -> list[tuple[str, Message]]:
        await super().aprocess(port, message)
        extra = strict_json({**message, "id": "zz-extra"})
        await self.system.database().record_put(self.name, "zz-extra", extra)
        return []


def _read_back_verdict(cls: type[Items]) -> str:
    """The generated read-back property of a store (templates/tests/test_component.py.j2), run
    with a fixed seed: "passed", or the failure's message and falsifying example."""

    @settings(max_examples=40, derandomize=True, database=None, deadline=None, phases=PHASES)
    @given(st.fixed_dictionaries({"id": st.text("abc", min_size=1, max_size=4), "n": st.integers(0, 99)}))
    def read_back(message: dict[str, Any]) -> None:
        valid = cls.inputs["in"].model_validate(message).model_dump(mode="json")
        assert stored(cls, "in", [message]) == {message["id"]: valid}

    try:
        read_back()
    except AssertionError as exc:
        return "\n".join([str(exc), *getattr(exc, "__notes__", [])])
    finally:
        release_databases()
    return "passed"


def test_emptying_the_filled_tables_gives_the_verdicts_and_messages_of_emptying_them_all(
    data: Path, monkeypatch
):
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", "NORMAL")  # as the build's test tier runs them
    new = [_read_back_verdict(Items), _read_back_verdict(Leaky)]
    monkeypatch.setattr(InlineDatabase, "_track", lambda self, connection: setattr(self, "filled", None))
    every_table = [_read_back_verdict(Items), _read_back_verdict(Leaky)]
    assert new == every_table
    assert new[0] == "passed"
    assert new[1].startswith("assert {") and "Failing test case" in new[1]


def _make_up(connection) -> tuple:
    """What a test database is made of: its schema, journal mode and rows of every table."""
    schema = connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    tables = [name for kind, name, _ in schema if kind == "table"]
    rows = {name: connection.execute(f'SELECT * FROM "{name}"').fetchall() for name in tables}
    return schema, connection.execute("PRAGMA journal_mode").fetchone(), rows


def test_each_tests_database_is_a_new_file_as_the_schema_makes_it(data: Path, tmp_path: Path, monkeypatch):
    """Each DATA_DIR's database starts as a copy of one this process made by the runtime's
    schema (testing._new_file): the same tables, WAL, no rows, AUTOINCREMENT from 1; its
    own file, which a restart opens as it was (run_across_restart), not a new copy."""
    made = Database(Dialect(str(tmp_path / "made.sqlite3")))
    made.open()
    try:
        expected = asyncio.run(made.read(_make_up))
    finally:
        made.close()
    try:
        seen = []
        for name in ("one", "two"):
            monkeypatch.setenv("DATA_DIR", str(tmp_path / name))
            database = asyncio.run(_fill(inline=True))
            assert database.connection.execute("PRAGMA synchronous").fetchone() == (0,)  # OFF
            asyncio.run(_again(inline=True))
            seen.append(database)
            (path,) = (tmp_path / name).glob("test-*.sqlite3")
            with sqlite3.connect(path) as fresh:  # a file of its own, not the template
                assert len(fresh.execute("SELECT * FROM inbox").fetchall()) == 1
        release_databases()
        for name in ("three", "four"):
            monkeypatch.setenv("DATA_DIR", str(tmp_path / name))
            database = asyncio.run(empty_database(inline=True))
            assert asyncio.run(database.read(_make_up)) == expected
            assert sorted(p.name for p in (tmp_path / name).iterdir() if "template" in p.name) == []
    finally:
        release_databases()
    assert seen[0] is not seen[1]
    assert stored(Items, "in", [{"id": "a", "n": 1}]) == {"a": {"id": "a", "n": 1, "ts": 0.0, "act": "ok"}}
    release_databases()
