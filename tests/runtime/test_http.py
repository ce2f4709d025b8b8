"""The HTTP face of a system: every client mistake is a 4xx (never a 500, never a traceback in
the log), a 202 means the message is committed, and store and dead-letter reads answer what is
in the database. The app runs with its lifespan under Starlette's TestClient, or as a real
`python -m <system> serve` process for what only a socket shows (a 50 MB chunked body)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from autocoder_runtime.testing import served
from rtkit import AUTH, KEY, demo, held, no_errors_logged, package, query, running, wait_until

JSON = {**AUTH, "content-type": "application/json"}


@pytest.fixture
def client(data, caplog_all):
    with running(demo()) as client:
        yield client
    no_errors_logged(caplog_all)


def post(client, body: dict, **headers: str):
    return client.post("/items", json=body, headers={**AUTH, **headers})


# --------------------------------------------------------------------------- query parameters


BAD_PAGING = [
    "limit=abc",
    "limit=-1",
    "limit=",
    "limit=1.5",
    "limit=1001",
    "limit=%C2%B2",  # a superscript two: str.isdigit() says yes, int() says no
    f"offset={2**63 + 1}",
    f"offset={10**40}",
    "offset=-5",
    "offset=0x10",
]


@pytest.mark.parametrize("path", ["/dead-letters", "/items"])
def test_bad_paging_parameters_are_422(client, path):
    for query_string in BAD_PAGING:
        response = client.get(f"{path}?{query_string}", headers=AUTH)
        assert response.status_code == 422, (query_string, response.text)
        assert query_string.split("=")[0] in response.json()["error"], query_string


def test_limit_minus_one_does_not_list_every_row(client):
    for i in range(3):
        assert post(client, {"id": f"r{i}", "act": "reject"}).status_code == 202
    wait_until(lambda: client.get("/dead-letters", headers=AUTH).json()["total"] == 3)
    assert client.get("/dead-letters?limit=-1", headers=AUTH).status_code == 422
    assert len(client.get("/dead-letters?limit=2", headers=AUTH).json()["items"]) == 2
    assert len(client.get("/dead-letters?limit=0", headers=AUTH).json()["items"]) == 0


# --------------------------------------------------------------------------- bodies


BAD_BODIES = {
    "invalid-utf8": b'{"id": "a", "act": "\xff\xfe"}',
    "invalid-utf8-key": b'{"\xc3\x28": 1}',
    "array-nested-100000": b"[" * 100_000 + b"]" * 100_000,
    "object-nested": b'{"id": "a", "n": ' + b'{"x": ' * 100_000 + b"1" + b"}" * 100_001,
    "int-4301-digits": b'{"id": "a", "n": ' + b"9" * 4301 + b"}",
    "int-20000-digits": b'{"id": "a", "n": ' + b"9" * 20_000 + b"}",
    "int-past-int64": json.dumps({"id": "a", "n": 2**63}).encode(),
    "int-below-int64": json.dumps({"id": "a", "n": -(2**63) - 1}).encode(),
    "float-infinite": b'{"id": "a", "ts": 1e999}',
    "nan": b'{"id": "a", "ts": NaN}',
    "string-for-int": b'{"id": "a", "n": "5"}',
    "unknown-field": b'{"id": "a", "extra": 1}',
    "pattern": b'{"id": "A B"}',
    "empty": b"",
    "truncated": b"{",
}


def test_bad_bodies_are_422_and_nothing_is_accepted(client, data):
    for name, body in BAD_BODIES.items():
        response = client.post("/items", content=body, headers=JSON)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["error"] and response.json()["errors"], name
    assert query(data, "demo", "SELECT COUNT(*) FROM inbox") == [(0,)]
    valid = client.post("/items", content=json.dumps({"id": "a", "n": 2**63 - 1}).encode(), headers=JSON)
    assert valid.status_code == 202  # the bound itself is fine


def test_schema_errors_name_each_field(client):
    response = client.post("/items", json={"id": "UPPER", "n": "x", "extra": 1}, headers=AUTH)
    assert response.status_code == 422
    assert {e["loc"] for e in response.json()["errors"]} == {"id", "n", "extra"}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "json"])
def test_body_that_is_not_declared_json_is_415(client, content_type):
    headers = dict(AUTH) if content_type is None else {**AUTH, "content-type": content_type}
    response = client.post("/items", content=b'{"id": "a"}', headers=headers)
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["error"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
def test_json_media_types_are_accepted(client, content_type):
    response = client.post("/items", content=b'{"id": "a"}', headers={**AUTH, "content-type": content_type})
    assert response.status_code == 202


# --------------------------------------------------------------------------- the key


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": KEY + "x"}, {"X-API-Key": ""}])
def test_missing_or_wrong_key_is_401_everywhere(client, data, headers):
    assert client.post("/items", json={"id": "a"}, headers=headers).status_code == 401
    assert client.get("/items", headers=headers).status_code == 401
    assert client.get("/items/a", headers=headers).status_code == 401
    assert client.get("/dead-letters", headers=headers).status_code == 401
    assert query(data, "demo", "SELECT COUNT(*) FROM inbox") == [(0,)]


def test_an_unset_key_admits_no_one(data, monkeypatch):
    monkeypatch.delenv("API_KEY")
    with running(demo()) as client:
        for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": KEY}):
            assert client.post("/items", json={"id": "a"}, headers=headers).status_code == 401
            assert client.get("/dead-letters", headers=headers).status_code == 401


# --------------------------------------------------------------------------- limits


def test_body_over_the_limit_is_413(data):
    with running(demo(api={"max_body_bytes": 100})) as client:
        declared = client.post("/items", content=b'{"id": "a"}' + b" " * 200, headers=JSON)
        assert declared.status_code == 413 and "100 bytes" in declared.json()["error"]
        assert declared.headers["connection"] == "close"

        def chunks():
            yield b'{"id": "a",'
            for _ in range(20):
                yield b" " * 50
            yield b"}"

        streamed = client.post("/items", content=chunks(), headers=JSON)
        assert streamed.status_code == 413
        assert client.post("/items", content=b'{"id": "a"}' + b" " * 89, headers=JSON).status_code == 202


def _server_pid(port: int) -> int:
    """The pid of our child process listening on `port` (found through /proc)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # LISTEN
            inode = fields[9]
    assert inode is not None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return int(pid)
    raise AssertionError("no process listens on the port")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # the peak resident size
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_a_50mb_chunked_body_is_cut_off_at_the_limit_by_a_real_server(tmp_path):
    """A chunked body has no Content-Length: the server must count as it reads. The 413
    arrives while the client is still sending, the connection is closed (the rest is never
    read), and the server's peak memory does not grow by anything like the body's size."""
    total = 50 * 1024 * 1024
    src = package(tmp_path / "src", "demo")
    with served("demo", src, tmp_path / "data", KEY) as client:
        port = int(str(client.base_url).rstrip("/").rsplit(":", 1)[1])
        pid = _server_pid(port)
        before = _rss_kb(pid)
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(
            b"POST /items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"X-API-Key: " + KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        state = {"sent": 0, "sent_at_answer": None, "answer": b""}

        def read_answer() -> None:
            state["answer"] = sock.recv(65536)
            state["sent_at_answer"] = state["sent"]

        reader = threading.Thread(target=read_answer)
        reader.start()
        chunk = b"x" * 65536
        framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        error = None
        try:
            while state["sent"] < total:
                sock.sendall(framed)
                state["sent"] += len(chunk)
        except OSError as exc:  # the server closed the connection: it stopped reading
            error = exc
        reader.join(10)
        sock.close()
        assert state["answer"].startswith(b"HTTP/1.1 413"), state["answer"][:200]
        assert state["sent_at_answer"] is not None and state["sent_at_answer"] < total // 2
        assert error is not None and state["sent"] < total, "the server read the whole body"
        assert _rss_kb(pid) - before < 16 * 1024, (before, _rss_kb(pid))
        assert client.get("/readyz").status_code == 200  # and it goes on serving


def test_rate_limit_is_429_with_retry_after(data):
    system = demo(api={})
    system.components["api"].bucket.rate = 0.5  # what rate_limit {rate: 0.5, burst: 2} builds
    system.components["api"].bucket.burst = system.components["api"].bucket.tokens = 2.0
    with running(system) as client:
        assert [post(client, {"id": f"a{i}"}).status_code for i in range(2)] == [202, 202]
        limited = post(client, {"id": "a2"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert "rate limit" in limited.json()["error"]


def test_a_full_inbox_is_503_with_retry_after_and_recovers(data, monkeypatch):
    monkeypatch.setenv("INBOX_LIMIT", "2")
    with running(demo()) as client:
        with held():  # s1 and s2 stay in the inbox until the gate opens
            assert post(client, {"id": "s1", "act": "hold"}).status_code == 202
            assert post(client, {"id": "s2", "act": "hold"}).status_code == 202
            full = post(client, {"id": "s3"})
            assert full.status_code == 503
            assert full.headers["retry-after"] == "1" and "saturated" in full.json()["error"]
            assert query(data, "demo", "SELECT COUNT(*) FROM inbox WHERE payload LIKE '%s3%'") == [(0,)]
        wait_until(lambda: post(client, {"id": "s3"}).status_code == 202, what="inbox drains")
        wait_until(lambda: client.get("/items/s3", headers=AUTH).status_code == 200)


# --------------------------------------------------------------------------- 202 and reads


def test_a_202_means_the_message_is_committed(client, data):
    """Right after each 202, in one read snapshot of the database (our own connection), the
    message is either still in the inbox or already stored."""
    db = sqlite3.connect(data / "demo.sqlite3", isolation_level=None)
    try:
        for i in range(40):
            response = post(client, {"id": f"c{i}", "n": i})
            assert response.status_code == 202
            trace = response.json()["trace_id"]
            db.execute("BEGIN")
            queued = db.execute("SELECT COUNT(*) FROM inbox WHERE trace_id = ?", (trace,)).fetchone()[0]
            stored = db.execute(
                "SELECT COUNT(*) FROM records WHERE store = 'items' AND key = ?", (f"c{i}",)
            ).fetchone()[0]
            db.execute("COMMIT")
            assert queued + stored >= 1, f"message {i} acknowledged with 202 but not in the database"
    finally:
        db.close()


def test_store_reads_answer_what_was_stored(client):
    for name, n in (("b", 2), ("a", 1), ("c", 3)):
        assert post(client, {"id": name, "n": n}).status_code == 202
    wait_until(lambda: len(client.get("/items", headers=AUTH).json()["items"]) == 3)
    assert client.get("/items/a", headers=AUTH).json() == {"id": "a", "n": 2, "ts": 0.0, "act": "ok"}
    missing = client.get("/items/zzz", headers=AUTH)
    assert missing.status_code == 404 and missing.json() == {"error": "no such record"}
    page = client.get("/items?limit=2&offset=0", headers=AUTH).json()
    assert [r["id"] for r in page["items"]] == ["a", "b"] and page["limit"] == 2 and page["offset"] == 0
    assert [r["id"] for r in client.get("/items?limit=2&offset=2", headers=AUTH).json()["items"]] == ["c"]
    assert client.get("/items?offset=3", headers=AUTH).json()["items"] == []
    # a redelivery or a second message with the same key overwrites the record
    assert post(client, {"id": "a", "n": 10}).status_code == 202
    wait_until(lambda: client.get("/items/a", headers=AUTH).json()["n"] == 11)
    assert len(client.get("/items", headers=AUTH).json()["items"]) == 3


def test_dead_letters_are_listed_with_their_error_envelope(client):
    traces = [post(client, {"id": f"d{i}", "act": "reject"}).json()["trace_id"] for i in range(3)]
    wait_until(lambda: client.get("/dead-letters", headers=AUTH).json()["total"] == 3)
    listing = client.get("/dead-letters?limit=2&offset=1", headers=AUTH).json()
    assert listing["total"] == 3 and listing["limit"] == 2 and listing["offset"] == 1
    first, second = listing["items"]
    assert set(first) == {"id", "ts", "component", "port", "error", "payload", "trace_id"}
    assert first["component"] == "work" and first["port"] == "in"
    assert first["error"] == "Rejected: logic failed: ValueError: cannot handle d1"
    assert first["payload"] == {"id": "d1", "n": 0, "ts": 0.0, "act": "reject"}
    assert [first["trace_id"], second["trace_id"]] == traces[1:]
    assert first["id"] < second["id"] and abs(first["ts"] - time.time()) < 60


def test_a_given_trace_id_is_kept_and_a_bad_one_replaced(client):
    kept = post(client, {"id": "t1"}, **{"X-Trace-Id": "abc-123_X"}).json()["trace_id"]
    assert kept == "abc-123_X"
    replaced = post(client, {"id": "t2"}, **{"X-Trace-Id": "bad id;" + "x" * 70}).json()["trace_id"]
    assert len(replaced) == 32 and "bad" not in replaced


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc and prctl")
def test_a_served_system_dies_with_the_process_that_started_it(tmp_path):
    """doit SIGKILLed during test:integration: the server `served` started must not live on."""
    src = package(tmp_path / "src", "demo")
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from autocoder_runtime.testing import served\n"
            f"with served('demo', Path({str(src)!r}), Path({str(tmp_path / 'data')!r}), {KEY!r}) as c:\n"
            "    print(c.base_url, flush=True)\n"
            "    time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    server = None
    try:
        port = int(parent.stdout.readline().strip().rstrip("/").rsplit(":", 1)[1])
        server = _server_pid(port)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        wait_until(lambda: not Path(f"/proc/{server}").exists(), what="the server ended", timeout=20)
    finally:
        parent.kill()
        if server is not None and Path(f"/proc/{server}").exists():
            os.kill(server, signal.SIGKILL)
