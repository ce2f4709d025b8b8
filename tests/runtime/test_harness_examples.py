"""Every example of a generated property test runs on its own, although the harness shares one
event loop, one system and one database between a test's runs and applies the database's
writes on the loop's thread (testing._Reused, testing.InlineDatabase): each example finds an
empty store, a failing example fails with its own message, a rejection is a rejection, and
the inline database answers every write and read as the runtime's threaded one does."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import pytest
from autocoder_runtime.database import Connection, Database, Dialect, InboxItem
from autocoder_runtime.kinds import Store, Transformer
from autocoder_runtime.messages import Envelope, Message, MessageModel, OutputInvalid, Rejected
from autocoder_runtime.spec import ComponentSpec
from autocoder_runtime.testing import InlineDatabase, harness, release_databases, run_once, stored
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from rtkit import Items

# what a generated property test runs with (templates/tests/test_component.py.j2)
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
KEYS = st.text(alphabet="ab", min_size=1, max_size=2)  # few keys: examples reuse each other's


class Num(MessageModel):
    id: str
    n: int


class Picky(Transformer):
    """Passes n on, plus one, up to 10; above that its output breaks its own schema; at 0 its
    logic divides by zero (a declared rejection)."""

    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Num}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Num}

    def transform(self, msg: Message) -> Message:
        n = msg["n"]
        if n > 10:
            return {"id": msg["id"], "n": "many"}
        return {"id": msg["id"], "n": n // n * n + 1}  # n // n: at 0, a division by zero


class Nums(Store):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Num}
    spec = ComponentSpec(config={"key": "id"})


def test_every_example_finds_an_empty_store(data: Path):
    counted = []

    @PROPERTY
    @given(before=st.lists(KEYS, max_size=3), keys=st.lists(KEYS, min_size=1, max_size=3, unique=True))
    def example(before: list[str], keys: list[str]) -> None:
        for key in before:  # runs of their own: whatever they write is gone for the next run
            assert run_once(Items, "in", {"id": key, "n": -1}) == []
        records = stored(Items, "in", [{"id": key, "n": len(keys)} for key in keys])
        assert records == {key: {"id": key, "n": len(keys), "ts": 0.0, "act": "ok"} for key in keys}
        counted.append(keys)

    try:
        example()
    finally:
        release_databases()
    assert len(counted) == 40


def test_a_failing_example_fails_with_its_own_message(data: Path):
    ran: list[int] = []

    @PROPERTY
    @given(n=st.integers(1, 60))
    def example(n: int) -> None:
        ran.append(n)
        assert run_once(Picky, "in", {"id": f"m{n}", "n": n}) == [("out", {"id": f"m{n}", "n": n + 1})]

    try:
        with pytest.raises(OutputInvalid, match=r"^schema Num: .*'loc': 'n'.*'type': 'int_type'"):
            example()
    finally:
        release_databases()
    assert ran[-1] == 11  # shrunk to the least failing input, replayed last: its own failure
    assert any(n <= 10 for n in ran)  # the passing ones passed around it


def test_a_rejection_is_a_rejection_in_every_example(data: Path):
    outcomes: dict[str, int] = {"rejected": 0, "passed": 0}

    @PROPERTY
    @given(n=st.integers(0, 3), key=st.sampled_from(["a", "b\x00"]))
    def example(n: int, key: str) -> None:
        if n == 0:
            with pytest.raises(Rejected, match="^logic failed: ZeroDivisionError: integer division"):
                run_once(Picky, "in", {"id": "x", "n": n})
            outcomes["rejected"] += 1
        else:
            assert run_once(Picky, "in", {"id": "x", "n": n}) == [("out", {"id": "x", "n": n + 1})]
            outcomes["passed"] += 1
        if "\x00" in key:  # refused before anything is written, and nothing is left behind
            with pytest.raises(Rejected, match="contains a NUL character"):
                stored(Nums, "in", [{"id": key, "n": n}])
        else:
            assert stored(Nums, "in", [{"id": key, "n": n}]) == {key: {"id": key, "n": n}}

    try:
        example()
    finally:
        release_databases()
    assert outcomes["rejected"] and outcomes["passed"]


def test_no_context_variable_of_one_run_reaches_the_next(data: Path):
    mark: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="unset")
    found: list[str] = []

    class Marks(Items):
        async def open(self) -> None:
            found.append(mark.get())
            mark.set("set by a run")

    try:
        for key in ("a", "b", "c"):
            stored(Marks, "in", [{"id": key}])
    finally:
        release_databases()
    assert found == ["unset"] * 3


def _duplicate(connection: Connection) -> None:
    connection.execute("INSERT INTO records (store, key, value, updated) VALUES ('s', 'k', 'again', 0)")


def _script(database: Database) -> list[Any]:
    """Writes and reads, one failing, and what each gave: a result or the exception's type and text."""

    async def steps() -> list[Any]:
        outcomes: list[Any] = []
        for step in (
            database.record_put("s", "k", '{"v": 1}'),
            database.write(_duplicate),  # a constraint fails this write alone
            database.inbox_add([InboxItem("c", "out", "out", "{}", "t")] * 2),
            database.dead_letter_add("c", "in", "boom", "{}", "t"),
            database.record_get("s", "k"),
            database.record_list("s", 10, 0),
            database.inbox_count(),
            database.dead_letter_count(),
        ):
            try:
                outcomes.append(await step)
            except Exception as exc:  # noqa: BLE001 - compared below
                outcomes.append((type(exc), str(exc)))
        return outcomes

    return asyncio.run(steps())


def test_the_inline_database_answers_as_the_threaded_one(tmp_path: Path):
    threaded = Database(Dialect(str(tmp_path / "threaded.sqlite3")))
    inline = InlineDatabase(Dialect(str(tmp_path / "inline.sqlite3")))
    for database in (threaded, inline):
        database.open()
    try:
        expected = _script(threaded)
        assert _script(inline) == expected
    finally:
        threaded.close()
        inline.close()
    assert expected[1] == (sqlite3.IntegrityError, "UNIQUE constraint failed: records.store, records.key")
    assert expected[4:] == ['{"v": 1}', ['{"v": 1}'], 2, 1]
    assert inline.written == threaded.written == 4
    with pytest.raises(RuntimeError, match="not open"):
        asyncio.run(inline.record_get("s", "k"))


def test_the_helpers_run_on_the_inline_database_and_harness_on_the_runtimes(data: Path):
    """run_once, stored and the rest apply writes inline; `harness` itself (what the bench tier
    times) keeps the runtime's threaded database, as a running system has it."""
    found: list[type] = []

    class Seen(Items):
        async def open(self) -> None:
            found.append(type(self.system.database()))

    async def bench_like() -> None:
        async with harness(Seen) as store:
            await store.handle("in", Envelope({"id": "a"}))
            assert [key for key in (await store.list(10, 0))] == [{"id": "a", "n": 0, "ts": 0.0, "act": "ok"}]

    try:
        stored(Seen, "in", [{"id": "a"}])
        run_once(Seen, "in", {"id": "b"})
        asyncio.run(bench_like())
        assert stored(Seen, "in", [{"id": "c"}]) == {"c": {"id": "c", "n": 0, "ts": 0.0, "act": "ok"}}
    finally:
        release_databases()
    assert found == [InlineDatabase, InlineDatabase, Database, InlineDatabase]
