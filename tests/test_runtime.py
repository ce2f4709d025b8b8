"""A generated system on the shared runtime (autocoder_runtime), end to end.

tests/fixtures/runtime is built with `autocoder build DIR gen` into a temp directory once per
module; its webhook sink points at a stdlib HTTP server on 127.0.0.1 whose answers each test
sets. The generated app runs under Starlette's TestClient (its lifespan starts and stops the
system on a real SQLite file under a fresh DATA_DIR), or as `python -m rtcheck` in a child
process for the CLI. The runtime's own behaviour is tested in detail in tests/runtime/; this
module checks that what the generator writes (models, components, SystemSpec wiring,
__main__) runs on it as the blueprint says.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "runtime"
KEY = {"X-API-Key": "runtime-test-key"}


class Hook:
    """What the webhook server does: answer `status` after `delay` seconds, and only once `gate`
    is open (a test closes it to hold deliveries for as long as it needs); record requests."""

    status = 200
    delay = 0.0
    requests: list[dict] = []
    gate = threading.Event()


Hook.gate.set()


class HookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Hook.requests.append(json.loads(body))
        time.sleep(Hook.delay)
        Hook.gate.wait(10.0)  # bounded: a test that forgets to open it still ends
        self.send_response(Hook.status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Generate the fixture system once, pointed at a local webhook server; (src, module)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), HookHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    project = tmp_path_factory.mktemp("runtime") / "rtcheck"
    shutil.copytree(FIXTURE, project)
    arch = project / "architecture.yaml"
    arch.write_text(arch.read_text().replace("127.0.0.1:9", f"127.0.0.1:{server.server_address[1]}"))
    build = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "gen"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stdout + build.stderr
    src = project / "generated" / "src"
    sys.path.insert(0, str(src))
    try:
        yield src, importlib.import_module("rtcheck.app")
    finally:
        sys.path.remove(str(src))
        for name in [m for m in sys.modules if m == "rtcheck" or m.startswith("rtcheck.")]:
            del sys.modules[name]
        server.shutdown()
        server.server_close()


@pytest.fixture
def system(built):
    return built[1]


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RT_KEY", KEY["X-API-Key"])
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "2")
    for name in ("QUEUE_SIZE", "INBOX_LIMIT", "DATABASE_URL", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    Hook.status, Hook.delay, Hook.requests = 200, 0.0, []
    Hook.gate.set()
    return tmp_path / "data"


@pytest.fixture
def client(system, data_dir):
    from starlette.testclient import TestClient

    with TestClient(system.create_app()) as test_client:
        yield test_client


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def rows(data_dir: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(data_dir / "rtcheck.sqlite3")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def letters(client) -> dict:
    return client.get("/dead-letters", headers=KEY).json()


def test_health_ready_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True}
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    assert {"/jobs", "/slow", "/limited", "/ticks", "/results", "/results/{key}", "/dead-letters"} <= set(
        paths
    )
    assert paths["/jobs"]["post"]["security"] == [{"apiKey": []}]
    assert paths["/results/{key}"]["get"]["security"] == [{"apiKey": []}]
    body = paths["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"job_id", "divisor"}


def test_auth_is_required(client):
    assert client.post("/jobs", json={"job_id": "a", "divisor": 1}).status_code == 401
    wrong = client.post("/jobs", json={"job_id": "a", "divisor": 1}, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    assert client.get("/results", headers={"X-API-Key": "nope"}).status_code == 401
    assert client.get("/dead-letters").status_code == 401


def test_bad_bodies(client, data_dir):
    as_json = {**KEY, "content-type": "application/json"}
    too_big = client.post("/jobs", content=b"{" + b" " * 300 + b"}", headers=as_json)
    assert too_big.status_code == 413  # max_body_bytes: 200
    assert client.post("/jobs", content=b"{nope", headers=as_json).status_code == 422
    assert client.post("/jobs", content=b'{"job_id": "\xff"}', headers=as_json).status_code == 422
    assert (
        client.post(
            "/jobs", content=b'{"job_id": "a"}', headers={**KEY, "content-type": "text/plain"}
        ).status_code
        == 415
    )
    invalid = client.post("/jobs", json={"job_id": "UPPER", "divisor": 11, "extra": 1}, headers=KEY)
    assert invalid.status_code == 422
    assert {e["loc"] for e in invalid.json()["errors"]} == {"job_id", "divisor", "extra"}
    # Tick.n has no bounds in the blueprint: the generated model holds it to signed 64 bits
    for n in (2**63, -(2**63) - 1):
        assert client.post("/ticks", json={"tick_id": "t", "n": n}, headers=KEY).status_code == 422
    huge = client.post("/ticks", content=b'{"tick_id": "t", "n": ' + b"9" * 4301 + b"}", headers=as_json)
    assert huge.status_code == 422
    assert rows(data_dir, "SELECT COUNT(*) FROM inbox WHERE component != 'ticker'") == [(0,)]
    assert client.post("/ticks", json={"tick_id": "t", "n": 2**63 - 1}, headers=KEY).status_code == 202


def test_a_message_flows_to_the_store(client, data_dir):
    response = client.post("/jobs", json={"job_id": "job-1", "divisor": 4}, headers=KEY)
    assert response.status_code == 202 and len(response.json()["trace_id"]) == 32
    wait_until(lambda: client.get("/results/job-1", headers=KEY).status_code == 200)
    assert client.get("/results/job-1", headers=KEY).json() == {
        "job_id": "job-1",
        "divisor": 4,
        "ratio": 25.0,
    }
    listing = client.get("/results", headers=KEY, params={"limit": 5, "offset": 0}).json()
    assert [r["job_id"] for r in listing["items"]] == ["job-1"]
    assert client.get("/results/none", headers=KEY).status_code == 404
    assert client.get("/results", headers=KEY, params={"limit": "-1"}).status_code == 422
    wait_until(lambda: rows(data_dir, "SELECT COUNT(*) FROM inbox") == [(0,)])


def test_a_failing_message_goes_to_dead_letters_never_lost(client):
    response = client.post("/jobs", json={"job_id": "zero", "divisor": 0}, headers=KEY)
    assert response.status_code == 202
    trace = response.json()["trace_id"]
    wait_until(lambda: letters(client)["total"] >= 1)
    (letter,) = letters(client)["items"]
    assert letter["component"] == "divide" and letter["port"] == "in"
    assert letter["error"] == "Rejected: logic failed: ZeroDivisionError: division by zero"
    assert letter["payload"] == {"job_id": "zero", "divisor": 0} and letter["trace_id"] == trace
    metrics = client.get("/metrics").text
    assert 'rtcheck_dead_letters_total{component="divide"} 1.0' in metrics
    assert 'rtcheck_messages_received_total{component="divide"} 1.0' in metrics


def test_rate_limit_answers_429_with_retry_after(client):
    first = client.post("/limited", json={"job_id": "r1", "divisor": 1}, headers=KEY)
    assert first.status_code == 202
    second = client.post("/limited", json={"job_id": "r2", "divisor": 1}, headers=KEY)
    assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1


def test_webhook_delivery(client):
    client.post("/slow", json={"job_id": "ok-1", "divisor": 2}, headers=KEY)
    wait_until(lambda: len(Hook.requests) == 1)
    assert Hook.requests == [{"job_id": "ok-1", "divisor": 2}]


def test_retry_then_an_open_circuit_holds_messages_back(client, data_dir):
    """retry: 3 attempts; circuit_breaker: 4 failures, 60 s recovery. w1 fails 3 times and is
    dead-lettered; w2's first failure is the 4th: the circuit opens and w2 and w3 wait in the
    inbox instead of being dead-lettered (no call reaches the peer while it is open)."""
    Hook.status = 500
    client.post("/slow", json={"job_id": "w1", "divisor": 1}, headers=KEY)
    wait_until(lambda: letters(client)["total"] == 1)
    assert len(Hook.requests) == 3
    assert letters(client)["items"][0]["error"] == "Transient: webhook answered 500"
    client.post("/slow", json={"job_id": "w2", "divisor": 1}, headers=KEY)
    client.post("/slow", json={"job_id": "w3", "divisor": 1}, headers=KEY)
    wait_until(lambda: 'rtcheck_circuit_state{component="hook"} 1.0' in client.get("/metrics").text)
    time.sleep(0.3)
    assert len(Hook.requests) == 4 and letters(client)["total"] == 1
    assert len(rows(data_dir, "SELECT id FROM inbox")) == 2
    assert 'rtcheck_retries_total{component="hook"} 3.0' in client.get("/metrics").text


def test_a_4xx_from_the_webhook_is_not_retried(client):
    Hook.status = 400
    client.post("/slow", json={"job_id": "r1", "divisor": 1}, headers=KEY)
    wait_until(lambda: letters(client)["total"] == 1)
    assert len(Hook.requests) == 1 and letters(client)["items"][0]["error"].startswith(
        "Rejected: webhook answered 400"
    )


def test_a_full_inbox_answers_503_with_retry_after(system, data_dir, monkeypatch):
    from starlette.testclient import TestClient

    monkeypatch.setenv("INBOX_LIMIT", "3")
    with TestClient(system.create_app()) as client:
        ticked = 'rtcheck_messages_emitted_total{component="ticker"} 5.0'
        wait_until(lambda: ticked in client.get("/metrics").text)  # the source's ticks count too
        wait_until(lambda: rows(data_dir, "SELECT COUNT(*) FROM inbox") == [(0,)])
        Hook.gate.clear()  # the webhook holds its answer: the three stay in the inbox
        try:
            codes = [
                client.post("/slow", json={"job_id": f"q{i}", "divisor": 1}, headers=KEY).status_code
                for i in range(3)
            ]
            assert codes == [202, 202, 202]
            full = client.post("/slow", json={"job_id": "q3", "divisor": 1}, headers=KEY)
            assert full.status_code == 503
            assert full.headers["retry-after"] == "1" and "saturated" in full.json()["error"]
        finally:
            Hook.gate.set()
        wait_until(lambda: len(Hook.requests) == 3)


def test_the_source_feeds_a_persisted_window(system, data_dir):
    """ticker emits 5 ticks (t-1, t-0, t-1, t-0, t-1) into per_tick's 3600 s window; the window
    is still open at shutdown, so its state stays in the database for the next start."""
    from starlette.testclient import TestClient

    with TestClient(system.create_app()) as client:
        wait_until(
            lambda: 'rtcheck_messages_emitted_total{component="ticker"} 5.0' in client.get("/metrics").text
        )
        wait_until(lambda: rows(data_dir, "SELECT COUNT(*) FROM inbox") == [(0,)])
    windows = rows(data_dir, "SELECT key, state FROM windows WHERE component = 'per_tick' ORDER BY key")
    counts = {json.loads(key): json.loads(state)["acc"]["seen"][0] for key, state in windows}
    assert counts == {"t-0": 2, "t-1": 3}


def test_graceful_shutdown_drains_every_accepted_message(system, data_dir, caplog):
    """A stop right after a burst: the dispatcher claims what was accepted, the drain finishes
    it (DRAIN_TIMEOUT_S is 2 s), and nothing is left in the inbox."""
    from starlette.testclient import TestClient

    caplog.set_level("INFO")
    for run in range(3):
        with TestClient(system.create_app()) as client:
            for i in range(20):
                response = client.post("/jobs", json={"job_id": f"d{run}-{i}", "divisor": 5}, headers=KEY)
                assert response.status_code == 202
        stopped = [r for r in caplog.records if r.getMessage() == "stopped"]
        assert stopped[-1].fields["undrained"] == 0, f"run {run}"
        assert rows(data_dir, "SELECT COUNT(*) FROM inbox") == [(0,)]
    assert rows(data_dir, "SELECT COUNT(*) FROM records WHERE store = 'results'") == [(60,)]


def test_structured_logs_carry_the_trace_id(client, caplog):
    caplog.set_level("INFO")
    trace = client.post("/jobs", json={"job_id": "log-1", "divisor": 0}, headers=KEY).json()["trace_id"]
    wait_until(lambda: letters(client)["total"] == 1)
    letter = next(r for r in caplog.records if r.getMessage() == "dead letter")
    assert letter.levelname == "WARNING"
    assert letter.fields["trace_id"] == trace and letter.fields["component"] == "divide"


def test_cli_lists_and_replays_dead_letters(built, data_dir, tmp_path):
    """A webhook that refused a message (400) makes a dead letter; `python -m rtcheck
    dead-letters` prints it as a JSON line; once the peer accepts again, `replay` moves it back
    to the inbox and the next `serve` delivers it."""
    from autocoder_runtime.testing import served
    from starlette.testclient import TestClient

    src, system = built
    Hook.status = 400
    with TestClient(system.create_app()) as client:
        trace = client.post("/slow", json={"job_id": "again", "divisor": 3}, headers=KEY).json()["trace_id"]
        wait_until(lambda: letters(client)["total"] == 1)
    env = {**os.environ, "PYTHONPATH": str(src)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rtcheck", *args], env=env, capture_output=True, text=True, timeout=60
        )

    listed = cli("dead-letters")
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    letter = json.loads(line)
    assert letter["trace_id"] == trace and letter["component"] == "hook"
    assert letter["payload"] == {"job_id": "again", "divisor": 3}
    Hook.status, Hook.requests = 200, []
    replayed = cli("replay")
    assert replayed.returncode == 0 and "replayed 1 dead letter(s)" in replayed.stderr
    assert cli("dead-letters").stdout == ""
    with served("rtcheck", src, data_dir, KEY["X-API-Key"]) as client:
        wait_until(lambda: Hook.requests == [{"job_id": "again", "divisor": 3}])
        assert client.get("/dead-letters", headers=KEY).json()["total"] == 0


def test_a_generated_test_that_runs_away_fails_at_its_time_limit(built, tmp_path):
    """The generated conftest puts every test under a time limit (a property test of a slow
    expression once ran for more than 10 minutes): a CPU-bound endless test in a copy of the
    generated tests, with the limit lowered to 1 s, fails with the limit's message instead of
    running until the build is killed."""
    src = tmp_path / "src"
    shutil.copytree(built[0], src, ignore=shutil.ignore_patterns("__pycache__"))
    conftest = src / "tests" / "conftest.py"
    text = conftest.read_text()
    assert "TEST_TIMEOUT_S = 120.0" in text
    conftest.write_text(text.replace("TEST_TIMEOUT_S = 120.0", "TEST_TIMEOUT_S = 1.0"))
    (src / "tests" / "test_runaway.py").write_text(
        "def test_runaway() -> None:\n    while True:\n        pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_runaway.py"],
        cwd=src,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=60,  # without the limit the test would run until here, and this test fail
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "TimeLimitExceeded: test ran longer than its limit of 1.0 s" in done.stdout, done.stdout
