"""The test harness reuses one SQLite database per DATA_DIR (testing.empty_database), emptied
for each run: a run must find exactly what a freshly made database holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

from autocoder_runtime.database import InboxItem
from autocoder_runtime.testing import empty_database, release_databases, stored
from rtkit import Items


def _rows(database) -> dict[str, list]:
    def read(connection):
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {t: connection.execute(f'SELECT * FROM "{t}"').fetchall() for (t,) in tables}

    return asyncio.run(database.read(read))


def test_a_reused_database_is_empty_again_and_counts_from_one(data: Path):
    async def fill():
        database = await empty_database()
        await database.inbox_add([InboxItem("c", "out", "out", "{}", "t")] * 3)
        await database.dead_letter_add("c", "in", "boom", "{}", "t")
        await database.record_put("items", "k", "{}")
        await database.window_put("agg", 0.0, "k", "{}")
        return database

    async def again():
        database = await empty_database()
        ids = await database.inbox_add([InboxItem("c", "out", "out", "{}", "t")])
        return database, ids

    try:
        first = asyncio.run(fill())
        assert all(_rows(first)[t] for t in ("inbox", "dead_letters", "records", "windows"))
        second, ids = asyncio.run(again())
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
