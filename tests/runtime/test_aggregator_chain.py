"""A chain of aggregators: the first one's closed windows go through the inbox into the second
one's windows, and the second one's results reach a store; nothing is counted twice or lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from autocoder_runtime.kinds import Aggregator, Store
from autocoder_runtime.messages import Message, MessageModel
from pydantic import BaseModel, Field
from rtkit import AUTH, Api, Item, make, query, running, spec, wait_until

INT64: dict[str, Any] = {"ge": -(2**63), "le": 2**63 - 1}


class Counted(MessageModel):
    id: str
    window_start: float
    window_end: float
    seen: int = Field(**INT64)


class Summed(MessageModel):
    id: str
    window_start: float
    window_end: float
    windows: int = Field(**INT64)
    seen: int = Field(**INT64)


class First(Aggregator):
    """Per id, messages per 0.2 s window."""

    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Counted}
    spec = spec(config={"window_s": 0.2})
    key_field: ClassVar[str | None] = "id"
    aggregates: ClassVar[dict[str, Any]] = {"seen": ["count", None]}

    def key(self, msg: Message) -> Any:
        return msg["id"]


class Second(Aggregator):
    """Per id, over 1 s: how many first-level windows, and their messages summed."""

    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Counted}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Summed}
    spec = spec(config={"window_s": 1.0})
    key_field: ClassVar[str | None] = "id"
    aggregates: ClassVar[dict[str, Any]] = {"windows": ["count", None], "seen": ["sum", "seen_value"]}

    def key(self, msg: Message) -> Any:
        return msg["id"]

    def seen_value(self, msg: Message) -> Any:
        return msg["seen"]


class Totals(Store):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Summed}
    spec = spec(config={"key": "window_start"})


def test_chained_windows_count_every_message_once(data: Path) -> None:
    system = make(
        "chain",
        {"api": Api, "first": First, "second": Second, "totals": Totals},
        [("api", "out", "first", "in"), ("first", "out", "second", "in"), ("second", "out", "totals", "in")],
        ingress=[{"component": "api", "path": "/items"}],
    )
    with running(system) as client:
        for _ in range(12):
            assert client.post("/items", json={"id": "dev"}, headers=AUTH).status_code == 202
        wait_until(
            lambda: (
                query(data, "chain", "SELECT value FROM records WHERE store = 'totals'")
                and not query(data, "chain", "SELECT key FROM windows")
                and not query(data, "chain", "SELECT id FROM inbox")
            ),
            timeout=15,
            what="every window closed and its result stored",
        )
    results = [
        json.loads(v) for (v,) in query(data, "chain", "SELECT value FROM records WHERE store = 'totals'")
    ]
    assert sum(r["seen"] for r in results) == 12  # every message counted once, through both levels
    assert all(r["windows"] >= 1 and r["window_end"] - r["window_start"] == 1.0 for r in results)
