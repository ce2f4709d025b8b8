"""Delivery: every message ends stored, sent, filtered or dead-lettered; a failing consumer is
restarted and its message delivered again; dead letters can be replayed; a stop leaves what did
not finish in the inbox for the next start. Real SQLite under a temp DATA_DIR, and the
embedded PostgreSQL server where the two backends must behave alike."""

from __future__ import annotations

import json
import time
from typing import ClassVar

import autocoder_runtime.component
import pytest
from autocoder_runtime.kinds import ApiEndpoint, Custom, Store
from autocoder_runtime.messages import Message, Rejected
from autocoder_runtime.testing import run_once
from pydantic import BaseModel
from rtkit import AUTH, Free, Work, demo, make, query, records, running, spec, wait_until


def post(client, body: dict) -> str:
    response = client.post("/items", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    return response.json()["trace_id"]


def letters(client) -> list[dict]:
    return client.get("/dead-letters", headers=AUTH).json()["items"]


def stored(client, ident: str) -> dict | None:
    response = client.get(f"/items/{ident}", headers=AUTH)
    return response.json() if response.status_code == 200 else None


def test_an_unexpected_exception_is_a_dead_letter_and_the_flow_goes_on(data):
    with running(demo()) as client:
        trace = post(client, {"id": "x", "act": "boom"})
        wait_until(lambda: letters(client))
        (letter,) = letters(client)
        assert letter["error"] == "RuntimeError: unexpected failure in the logic"
        assert letter["component"] == "work" and letter["trace_id"] == trace
        post(client, {"id": "y"})
        wait_until(lambda: stored(client, "y"))
        wait_until(lambda: query(data, "demo", "SELECT COUNT(*) FROM inbox") == [(0,)])


def test_a_dead_letter_json_cannot_hold_is_still_recorded(data):
    """work emits an integer of 5001 digits (its output model has no bounds); the store cannot
    write it as JSON and rejects it; the dead-letter row records a description of the payload
    instead of failing on it, and later messages still flow through both components."""
    with running(demo()) as client:
        trace = post(client, {"id": "huge", "act": "big"})
        wait_until(lambda: letters(client))
        (letter,) = letters(client)
        assert letter["component"] == "bigs" and letter["port"] == "in" and letter["trace_id"] == trace
        assert "cannot be stored as JSON" in letter["error"]
        assert set(letter["payload"]) == {"unserializable", "reason"}
        assert "ValueError" in letter["payload"]["reason"]
        post(client, {"id": "after"})
        post(client, {"id": "again", "act": "big"})
        wait_until(lambda: stored(client, "after") and len(letters(client)) == 2)
        wait_until(lambda: query(data, "demo", "SELECT COUNT(*) FROM inbox") == [(0,)])


class FreeApi(ApiEndpoint):
    outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Free}


class Notes(Store):
    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Free}
    spec = spec(config={"key": "id"})


class Echo(Custom):
    """Logic whose error quotes its input: a NUL in the input reaches the dead letter's error."""

    inputs: ClassVar[dict[str, type[BaseModel]]] = {"in": Free}
    outputs: ClassVar[dict[str, type[BaseModel]]] = {}

    def handle_message(self, port: str, msg: Message) -> list[tuple[str, Message]]:
        if "\x00" in msg["id"]:
            raise ValueError(f"cannot echo {msg['id']}")
        return []


def test_a_store_key_with_nul_is_a_declared_rejection(data):
    """The refusal is `Rejected` (permanent: a dead letter, never retried), which a generated
    property test accepts as a declared rejection; as a bare ValueError it failed them
    whenever hypothesis drew a NUL into a store's key."""
    with pytest.raises(Rejected, match="NUL"):
        run_once(Notes, "in", {"id": "a\u0000b", "n": 1})
    assert run_once(Notes, "in", {"id": "ab", "n": 1}) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_key_with_nul_is_refused_alike_on_both_backends(backend, data, request, monkeypatch):
    """SQLite keeps "\\u0000" in TEXT, PostgreSQL cannot: the store refuses such a key on both
    (a dead letter naming the NUL), a read of it is a 404 on both, not a 500, and a dead letter
    whose error quotes a NUL is recorded on both with it escaped."""
    if backend == "postgres":
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("postgres_dsn"))
    system = make(
        "nul",
        {"api": FreeApi, "notes": Notes, "echo": Echo},
        [("api", "out", "notes", "in"), ("api", "out", "echo", "in")],
        ingress=[{"component": "api", "path": "/notes"}],
        stores=["notes"],
        backend=backend,
    )
    with running(system) as client:
        for ident in ("a\u0000b", "plain"):
            response = client.post("/notes", json={"id": ident, "n": 1}, headers=AUTH)
            assert response.status_code == 202, response.text
        wait_until(lambda: client.get("/notes/plain", headers=AUTH).status_code == 200)
        wait_until(lambda: len(letters(client)) == 2)
        echo, notes = sorted(letters(client), key=lambda letter: letter["component"])
        assert notes["component"] == "notes" and notes["payload"] == {"id": "a\u0000b", "n": 1}
        assert "NUL" in notes["error"] and "\x00" not in notes["error"], notes["error"]
        assert (
            echo["error"].endswith("ValueError: cannot echo a\\x00b") and echo["payload"] == notes["payload"]
        )
        assert client.get("/notes/a%00b", headers=AUTH).status_code == 404
        assert client.get("/notes", headers=AUTH).json()["items"] == [{"id": "plain", "n": 1}]


def test_a_failing_consumer_is_restarted_and_its_message_delivered_again(data, monkeypatch, caplog_all):
    """The dead-letter write fails once: the failure escapes the per-message handling and ends
    the consumer. It is restarted after a delay, during which /readyz answers 503 naming it;
    the message it held is not acknowledged (its row stays in the inbox) and, once its lease
    runs out, is delivered again and dead-lettered properly."""
    monkeypatch.setattr(autocoder_runtime.component, "RESTART_DELAY_S", (0.4, 5.0))  # first: 0.8 s
    monkeypatch.setenv("INBOX_LEASE_S", "1.5")
    with running(demo()) as client:
        db = client.app.state.system.db
        original = db.dead_letter_add
        calls = []

        async def fails_once(*args, **kwargs):
            calls.append(args)
            if len(calls) == 1:
                raise OSError("disk full (once)")
            return await original(*args, **kwargs)

        monkeypatch.setattr(db, "dead_letter_add", fails_once)
        trace = post(client, {"id": "r", "act": "reject"})
        not_ready = wait_until(
            lambda: (r := client.get("/readyz")).status_code == 503 and r.json(), what="readyz 503"
        )
        assert not_ready["ready"] is False
        assert not_ready["reasons"] == ["consumer work.in#0 failed and is restarting"]
        rows = query(data, "demo", "SELECT trace_id, attempts FROM inbox")
        assert rows == [(trace, 1)], "the message in flight was acknowledged"
        wait_until(lambda: client.get("/readyz").status_code == 200, what="ready again")
        wait_until(lambda: letters(client), what="delivered again", timeout=10)
        (letter,) = letters(client)
        assert letter["trace_id"] == trace and "cannot handle r" in letter["error"]
        assert len(calls) == 2
        wait_until(lambda: query(data, "demo", "SELECT COUNT(*) FROM inbox") == [(0,)])
        post(client, {"id": "later"})  # the restarted consumer works
        wait_until(lambda: stored(client, "later"))
    (failed,) = records(caplog_all, "consumer failed")
    assert failed["level"] == "ERROR" and failed["consumer"] == "work.in#0"
    assert failed["error"] == "OSError: disk full (once)"


def test_replay_processes_dead_letters_again(data, monkeypatch):
    monkeypatch.setattr(Work, "broken", True)
    system = demo()
    with running(system) as client:
        for ident in ("a", "b", "c"):
            post(client, {"id": ident, "n": 1})
        wait_until(lambda: len(letters(client)) == 3)
        monkeypatch.setattr(Work, "broken", False)  # the bug is fixed
        ids = [x["id"] for x in letters(client) if x["payload"]["id"] in ("a", "c")]
        assert client.portal.call(system.replay, ids) == 2
        wait_until(lambda: stored(client, "a") and stored(client, "c"))
        assert stored(client, "a")["n"] == 2 and stored(client, "b") is None
        assert [x["payload"]["id"] for x in letters(client)] == ["b"]
        assert client.portal.call(system.replay, None) == 1
        wait_until(lambda: stored(client, "b"))
        assert letters(client) == []
        wait_until(lambda: query(data, "demo", "SELECT COUNT(*) FROM inbox") == [(0,)])


def test_replay_goes_to_the_input_that_failed_not_through_the_graph_again(data, monkeypatch):
    """A dead letter of the store is replayed into the store, not through work again."""
    with running(demo()) as client:
        post(client, {"id": "h", "act": "big"})
        wait_until(lambda: letters(client))
        system = client.app.state.system
        assert client.portal.call(system.replay, None) == 1
        wait_until(lambda: letters(client) and letters(client)[0]["component"] == "bigs")
        # it failed again in bigs (its payload is the description, not the message)
        (letter,) = letters(client)
        assert letter["port"] == "in" and "schema Free" in letter["error"]


@pytest.mark.parametrize("backlog", [6])
def test_stop_leaves_unfinished_messages_in_the_inbox_and_the_next_start_delivers_them(
    data, monkeypatch, caplog_all, backlog
):
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "0.5")
    with running(demo()) as client:
        for i in range(backlog):
            post(client, {"id": f"s{i}", "act": "sleep:0.25"})
        wait_until(lambda: stored(client, "s0"), what="the first message")
    left = query(data, "demo", "SELECT payload FROM inbox ORDER BY id")
    done = query(data, "demo", "SELECT key FROM records WHERE store = 'items'")
    (stopped,) = records(caplog_all, "stopped")
    assert stopped["undrained"] == len(left)
    assert 0 < len(left) < backlog, (left, done)
    assert {json.loads(p)["id"] for (p,) in left} | {k for (k,) in done} == {f"s{i}" for i in range(backlog)}
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "5")
    with running(demo()) as client:
        wait_until(lambda: all(stored(client, f"s{i}") for i in range(backlog)), what="redelivery")
    assert query(data, "demo", "SELECT COUNT(*) FROM inbox") == [(0,)]
    assert records(caplog_all, "stopped")[-1]["undrained"] == 0
    assert records(caplog_all, "started")[-1]["inbox"] == len(left)


def test_a_message_that_keeps_failing_its_delivery_ends_as_a_dead_letter(data, monkeypatch):
    """An inbox entry delivered MAX_DELIVERIES times without completing (it crashed the process
    each time, say) leaves the inbox for the dead letters instead of looping for ever."""
    import autocoder_runtime.system

    monkeypatch.setattr(autocoder_runtime.system, "MAX_DELIVERIES", 2)
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "0")
    for _ in range(2):  # two starts, each cut short while the message sleeps
        with running(demo()) as client:
            if not query(data, "demo", "SELECT COUNT(*) FROM inbox")[0][0]:
                post(client, {"id": "slow", "act": "sleep:30"})
            wait_until(lambda: query(data, "demo", "SELECT attempts FROM inbox")[0][0] >= 1)
    with running(demo()) as client:
        wait_until(lambda: letters(client))
        (letter,) = letters(client)
        assert letter["error"].startswith("delivered 2 times without completing")
        assert letter["payload"]["id"] == "slow"
    assert query(data, "demo", "SELECT COUNT(*) FROM inbox") == [(0,)]


def test_the_same_system_can_be_stopped_and_started_again(data, monkeypatch, caplog_all):
    """A stop cut short leaves nothing behind in the System object: started again, it delivers
    what was left, and its next stop has nothing in flight to wait for."""
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "0.1")
    system = demo()
    with running(system) as client:
        for i in range(4):
            post(client, {"id": f"s{i}", "act": "sleep:0.3"})
        wait_until(
            lambda: query(data, "demo", "SELECT COUNT(*) FROM inbox WHERE owner IS NOT NULL") == [(4,)]
        )
    assert records(caplog_all, "stopped")[-1]["undrained"] == 4
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "5")
    with running(system) as client:
        wait_until(lambda: all(stored(client, f"s{i}") for i in range(4)), what="redelivery", timeout=5)
        wait_until(lambda: query(data, "demo", "SELECT COUNT(*) FROM inbox") == [(0,)])
        started = time.monotonic()
    assert time.monotonic() - started < 2, "the stop waited for deliveries that had ended"
    assert records(caplog_all, "stopped")[-1] == {
        "level": "INFO",
        "system": "demo",
        "undrained": 0,
        "in_flight_cut": 0,
    }


def test_a_stop_right_after_a_burst_delivers_the_whole_burst(data, monkeypatch, caplog_all):
    """Messages accepted just before a stop are claimed by the dispatcher's last round and
    drained with the rest, not left for the next start."""
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "5")
    for run in range(5):
        with running(demo()) as client:
            for i in range(10):
                post(client, {"id": f"b{run}-{i}"})
        assert records(caplog_all, "stopped")[-1]["undrained"] == 0, f"run {run}"
    assert query(data, "demo", "SELECT COUNT(*) FROM records WHERE store = 'items'") == [(50,)]
