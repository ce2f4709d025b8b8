"""Aggregator windows: several messages folded per key, state persisted so a restart continues
the window, event-time placement, the max_keys bound, and results going through the inbox to a
downstream store. Event times are chosen so that every window closes at a known moment (its
end plus grace_s), which keeps the tests deterministic."""

from __future__ import annotations

import json
import math
import time
from typing import Any, ClassVar

from autocoder_runtime.kinds import Aggregator, Store
from autocoder_runtime.messages import Message
from pydantic import BaseModel
from rtkit import AUTH, Api, Item, Total, make, query, running, spec, wait_until


class Totals(Store):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Total}
    spec = spec(config={"key": "id"})


def sums(**config: Any) -> type[Aggregator]:
    """An aggregator keyed by id: count, sum and avg of n, over windows of `config`."""

    class Sums(Aggregator):
        inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Item}
        outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Total}
        spec = spec(config=config)
        key_field: ClassVar[str | None] = "id"
        aggregates: ClassVar[dict[str, tuple[str, str | None]]] = {
            "count": ("count", None),
            "total": ("sum", "value"),
            "avg": ("avg", "value"),
        }

        def key(self, msg: Message) -> Any:
            return msg["id"]

        def value(self, msg: Message) -> Any:
            return msg["n"]

    return Sums


def windowed(**config: Any):
    """api -> sums (event time `ts`) -> totals (a store)."""
    Sums = sums(event_time="ts", **config)

    return make(
        "agg",
        {"api": Api, "sums": Sums, "totals": Totals},
        [("api", "out", "sums", "in"), ("sums", "out", "totals", "in")],
        ingress=[{"component": "api", "path": "/items"}],
        stores=["totals"],
    )


def post(client, ident: str, n: int, ts: float) -> None:
    response = client.post("/items", json={"id": ident, "n": n, "ts": ts}, headers=AUTH)
    assert response.status_code == 202, response.text


def total(client, ident: str) -> dict | None:
    response = client.get(f"/totals/{ident}", headers=AUTH)
    return response.json() if response.status_code == 200 else None


def window_rows(data) -> dict[str, tuple[float, dict]]:
    rows = query(data, "agg", "SELECT key, window_start, state FROM windows WHERE component = 'sums'")
    return {json.loads(key): (start, json.loads(state)) for key, start, state in rows}


def test_a_window_folds_several_messages_per_key(data):
    ts = time.time()
    start = math.floor(ts)  # window_s 1: closes at start + 1 + grace, at least 1.5 s from now
    with running(windowed(window_s=1, grace_s=1.5)) as client:
        for n in (1, 2, 6):
            post(client, "a", n, ts)
        post(client, "b", 10, ts)
        wait_until(lambda: window_rows(data).get("a", (0, {}))[1].get("acc", {}).get("total") == [3, 9, 1, 6])
        assert total(client, "a") is None  # still open
        wait_until(lambda: total(client, "a") and total(client, "b"), what="the window closes")
        assert total(client, "a") == {
            "id": "a",
            "window_start": start,
            "window_end": start + 1,
            "count": 3,
            "total": 9,
            "avg": 3.0,
        }
        assert total(client, "b")["count"] == 1 and total(client, "b")["avg"] == 10.0
        wait_until(lambda: query(data, "agg", "SELECT COUNT(*) FROM inbox") == [(0,)])
    assert window_rows(data) == {}  # closed windows are forgotten


def test_a_restart_continues_the_window(data):
    """Two messages, stop, a new System on the same DATA_DIR, a third message: the window's
    result counts all three (the state was loaded, not overwritten)."""
    ts = time.time()
    with running(windowed(window_s=1, grace_s=3)) as client:
        post(client, "a", 1, ts)
        post(client, "a", 2, ts)
        wait_until(lambda: window_rows(data).get("a", (0, {}))[1].get("acc", {}).get("count", [0])[0] == 2)
        wait_until(lambda: query(data, "agg", "SELECT COUNT(*) FROM inbox") == [(0,)])
    assert window_rows(data)["a"][1]["acc"]["total"][1] == 3  # persisted through the stop
    with running(windowed(window_s=1, grace_s=3)) as client:
        post(client, "a", 4, ts)
        wait_until(lambda: window_rows(data)["a"][1]["acc"]["count"][0] == 3)
        wait_until(lambda: total(client, "a"), what="the window closes", timeout=8)
        assert total(client, "a")["count"] == 3 and total(client, "a")["total"] == 7


def test_event_time_puts_messages_in_the_window_of_their_timestamp(data):
    """Events from about 1000 s ago, in three 10 s windows; grace_s is set so that they all
    close about 2 s from now. Processing time would have put them in one window."""
    now = time.time()
    base = math.floor((now - 1000) / 10) * 10
    grace = (now - (base + 30)) + 2
    with running(windowed(window_s=10, grace_s=grace)) as client:
        post(client, "p", 1, base + 1)
        post(client, "q", 5, base + 12)
        post(client, "p", 2, base + 9.5)
        post(client, "r", 7, base + 20)
        post(client, "s", 3, base + 0)
        wait_until(lambda: len(window_rows(data)) == 4)
        placed = {key: start for key, (start, _) in window_rows(data).items()}
        assert placed == {"p": base, "s": base, "q": base + 10, "r": base + 20}
        wait_until(lambda: all(total(client, k) for k in "pqrs"), what="the windows close", timeout=8)
        assert {k: (total(client, k)["window_start"], total(client, k)["count"]) for k in "pqrs"} == {
            "p": (base, 2),
            "s": (base, 1),
            "q": (base + 10, 1),
            "r": (base + 20, 1),
        }
        assert total(client, "p")["window_end"] == base + 10


def test_an_event_time_that_is_not_a_number_is_a_dead_letter(data):
    system = windowed(window_s=10, grace_s=0)
    system.components["sums"].config = system.components["sums"].config.model_copy(
        update={"event_time": "id"}
    )
    with running(system) as client:
        post(client, "x", 1, 0)
        wait_until(lambda: client.get("/dead-letters", headers=AUTH).json()["total"] == 1)
        (letter,) = client.get("/dead-letters", headers=AUTH).json()["items"]
        assert "event time field 'id' is not a number" in letter["error"]


def test_max_keys_closes_the_oldest_key_early(data):
    """max_keys=2: a third key in the window emits the oldest key's partial result at once
    (through the inbox, to the store) and keeps the other two."""
    ts = time.time()
    start = math.floor(ts)
    with running(windowed(window_s=1, grace_s=3600, max_keys=2)) as client:
        post(client, "a", 1, ts)
        post(client, "b", 2, ts)
        post(client, "a", 3, ts)
        wait_until(lambda: window_rows(data).get("a", (0, {}))[1].get("acc", {}).get("count", [0])[0] == 2)
        assert total(client, "a") is None
        post(client, "c", 4, ts)
        wait_until(lambda: total(client, "a"), what="the oldest key closed early")
        assert total(client, "a") == {
            "id": "a",
            "window_start": start,
            "window_end": start + 1,
            "count": 2,
            "total": 4,
            "avg": 2.0,
        }
        assert set(window_rows(data)) == {"b", "c"}
        assert total(client, "b") is None and total(client, "c") is None
        post(client, "d", 5, ts)  # b is now the oldest
        wait_until(lambda: total(client, "b"))
        assert set(window_rows(data)) == {"c", "d"}
        wait_until(lambda: query(data, "agg", "SELECT COUNT(*) FROM inbox") == [(0,)])


def test_the_test_harness_folds_a_batch_into_one_window_whatever_the_wall_clock(data, monkeypatch):
    """Generated property tests send three copies of a message through run_many and expect one
    window: the harness pins the processing-time clock for the batch, so a wall clock that
    crosses a window boundary between two messages (here: every reading 0.6 s later, with
    1 s windows) cannot split it."""
    from autocoder_runtime.testing import run_many

    Counts = sums(window_s=1)  # processing time
    readings = iter(1000.0 + 0.6 * i for i in range(10_000))
    monkeypatch.setattr(time, "time", lambda: next(readings))
    outputs = run_many(Counts, "in", [{"id": "a", "n": 1}] * 3)
    assert [(port, message["count"]) for port, message in outputs] == [("out", 3)]


def test_the_test_harness_restarts_a_window_on_the_same_database(data, monkeypatch):
    """run_across_restart (the generated "window across a restart" property test): two messages,
    the component and its database closed, a new one on the same file, a third message: one
    result counting all three, in the window the first two opened."""
    from autocoder_runtime.testing import run_across_restart

    Counts = sums(window_s=1)  # processing time: pinned for the whole run
    readings = iter(1000.0 + 0.6 * i for i in range(10_000))
    monkeypatch.setattr(time, "time", lambda: next(readings))
    outputs = run_across_restart(Counts, "in", [{"id": "a", "n": 2}] * 2, [{"id": "a", "n": 5}])
    assert [(port, m["count"], m["total"], m["window_start"]) for port, m in outputs] == [
        ("out", 3, 9, 1000.0)
    ]
