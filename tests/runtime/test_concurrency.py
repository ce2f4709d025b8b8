"""Per-component concurrency, and fan-out where one slow target does not hold back its sibling
beyond the slow one's queue bound. Systems run through the real app (TestClient) on SQLite."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from autocoder_runtime.database import InboxItem, opened
from autocoder_runtime.kinds import Custom
from autocoder_runtime.messages import Message
from pydantic import BaseModel
from rtkit import AUTH, Api, Item, Items, Recorder, configured, make, query, running, wait_until


class Gate:
    """Released by the test: until then, every message of a Held component waits."""

    def __init__(self) -> None:
        self.open = threading.Event()


class Held(Custom):
    """Waits for its gate, counting how many messages it holds at once."""

    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {}
    gate: ClassVar[Gate]
    active: ClassVar[int] = 0
    most: ClassVar[int] = 0
    seen: ClassVar[list[str]]

    async def aprocess(self, port: str, message: Message) -> list[tuple[str, Message]]:
        cls = type(self)
        cls.active += 1
        cls.most = max(cls.most, cls.active)
        cls.seen.append(message["id"])
        try:
            while not cls.gate.open.is_set():
                await asyncio.sleep(0.01)
        finally:
            cls.active -= 1
        return []


def held(concurrency: int) -> type[Held]:
    cls: Any = configured(Held, capabilities={"concurrency": concurrency})
    cls.gate, cls.active, cls.most, cls.seen = Gate(), 0, 0, []
    return cls  # type: ignore[no-any-return]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_concurrency_is_how_many_messages_a_component_holds_at_once(data: Path, concurrency: int) -> None:
    slow = held(concurrency)
    system = make(
        "conc",
        {"api": Api, "slow": slow},
        [("api", "out", "slow", "in")],
        ingress=[{"component": "api", "path": "/items"}],
    )
    with running(system) as client:
        for i in range(8):
            assert client.post("/items", json={"id": f"m{i}"}, headers=AUTH).status_code == 202
        wait_until(lambda: len(slow.seen) >= concurrency, what="messages taken")
        assert slow.active == concurrency  # no more than its concurrency, and all of them busy
        slow.gate.open.set()
        wait_until(lambda: len(slow.seen) == 8, what="every message processed")
        wait_until(lambda: not query(data, "conc", "SELECT id FROM inbox"), what="inbox empty")
    assert slow.most == concurrency


def test_a_slow_target_holds_its_sibling_back_only_past_its_queue_bound(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEUE_SIZE", "3")
    slow = held(1)
    system = make(
        "fan",
        {"api": Api, "slow": slow, "items": Items},
        [("api", "out", "slow", "in"), ("api", "out", "items", "in")],
        ingress=[{"component": "api", "path": "/items"}],
        stores=["items"],
    )
    with running(system) as client:
        for i in range(4):  # one in the slow consumer's hands, three in its queue
            assert client.post("/items", json={"id": f"m{i}"}, headers=AUTH).status_code == 202
        stored = wait_until(
            lambda: len(query(data, "fan", "SELECT key FROM records")) == 4 or None,
            what="the fast sibling stores every message while the slow one is stuck",
        )
        assert stored and slow.seen == ["m0"]
        for i in range(4, 8):  # past the slow queue's bound: the fast sibling waits too
            assert client.post("/items", json={"id": f"m{i}"}, headers=AUTH).status_code == 202
        slow.gate.open.set()
        wait_until(lambda: len(query(data, "fan", "SELECT key FROM records")) == 8, what="all stored")
        wait_until(lambda: len(slow.seen) == 8, what="the slow target catches up")


def test_entries_waiting_for_queue_room_keep_their_lease(
    data: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas on PostgreSQL. The first claims a backlog in one batch but its consumer is
    stuck and its queue full: the entries it has not handed over yet are renewed with those in
    flight, so none lapses and the second replica never delivers them a second time."""
    monkeypatch.setenv("QUEUE_SIZE", "1")
    monkeypatch.setenv("INBOX_LEASE_S", "0.3")
    monkeypatch.setenv("DATABASE_URL", postgres_dsn)

    async def fill() -> None:  # a backlog, so that the first replica claims it in one batch
        with opened("postgres", "lease", data, postgres_dsn) as db:
            await db.inbox_add(
                InboxItem("api", "out", "out", json.dumps({"id": f"m{i}"}), f"t{i}") for i in range(6)
            )

    asyncio.run(fill())
    slow = held(1)
    Recorder.seen = []
    first = make("lease", {"api": Api, "work": slow}, [("api", "out", "work", "in")], backend="postgres")
    second = make("lease", {"api": Api, "work": Recorder}, [("api", "out", "work", "in")], backend="postgres")
    with running(first):
        wait_until(lambda: slow.seen == ["m0"], what="the first message taken")
        with running(second):
            threading.Event().wait(1.5)  # five lease periods with the first replica stuck
            assert Recorder.seen == []
            slow.gate.open.set()
            wait_until(lambda: len(slow.seen) == 6, what="the first replica delivers its claims")
    assert sorted(slow.seen) == [f"m{i}" for i in range(6)] and Recorder.seen == []  # each once
