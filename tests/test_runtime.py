"""The generated runtime's behaviour, called over HTTP (Starlette's TestClient runs the real
app with its lifespan): auth, body and rate limits, back-pressure, dead letters, retry,
circuit breaker, sources, windows, file sinks, graceful shutdown.

The system under test is tests/fixtures/runtime, generated into a temp directory; its webhook
sink points at a stdlib HTTP server on 127.0.0.1 whose behaviour each test sets.
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
    """What the webhook server does: answer `status` after `delay` seconds; count requests."""

    status = 200
    delay = 0.0
    requests: list[dict] = []


class HookHandler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Hook.requests.append(json.loads(body))
        time.sleep(Hook.delay)
        self.send_response(Hook.status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """Generate the fixture system once, pointed at a local webhook server; import it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), HookHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    project = tmp_path_factory.mktemp("runtime") / "rtcheck"
    shutil.copytree(FIXTURE, project)
    arch = project / "architecture.yaml"
    arch.write_text(arch.read_text().replace("127.0.0.1:9", f"127.0.0.1:{server.server_address[1]}"))
    build = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "gen"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stdout + build.stderr
    src = project / "generated" / "src"
    saved = {k: os.environ.get(k) for k in ("QUEUE_SIZE", "INGRESS_WAIT_S", "RT_KEY")}
    os.environ.update(QUEUE_SIZE="2", INGRESS_WAIT_S="0.2", RT_KEY=KEY["X-API-Key"])
    sys.path.insert(0, str(src))
    try:
        yield importlib.import_module("rtcheck.app")
    finally:
        sys.path.remove(str(src))
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.shutdown()


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    Hook.status, Hook.delay, Hook.requests = 200, 0.0, []
    return tmp_path / "data"


@pytest.fixture
def client(system, data_dir):
    from starlette.testclient import TestClient

    with TestClient(system.create_app()) as test_client:
        yield test_client


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_health_ready_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/jobs", "/slow", "/limited", "/results", "/results/{key}"} <= set(paths)


def test_auth_is_required(client):
    assert client.post("/jobs", json={"job_id": "a", "divisor": 1}).status_code == 401
    wrong = client.post("/jobs", json={"job_id": "a", "divisor": 1}, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    assert client.get("/results", headers={"X-API-Key": "nope"}).status_code == 401


def test_bad_bodies(client):
    too_big = client.post("/jobs", content=b"{" + b" " * 300 + b"}", headers=KEY)
    assert too_big.status_code == 413
    assert client.post("/jobs", content=b"{nope", headers=KEY).status_code == 422
    invalid = client.post("/jobs", json={"job_id": "UPPER", "divisor": 11, "extra": 1}, headers=KEY)
    assert invalid.status_code == 422
    locs = {e["loc"] for e in invalid.json()["errors"]}
    assert {"job_id", "divisor", "extra"} <= locs


def test_a_message_flows_to_the_store(client):
    response = client.post("/jobs", json={"job_id": "job-1", "divisor": 4}, headers=KEY)
    assert response.status_code == 202 and len(response.json()["trace_id"]) == 32
    wait_until(lambda: client.get("/results/job-1", headers=KEY).status_code == 200)
    assert client.get("/results/job-1", headers=KEY).json() == {
        "job_id": "job-1",
        "divisor": 4,
        "ratio": 25.0,
    }
    listing = client.get("/results", headers=KEY, params={"limit": 5, "offset": 0}).json()
    assert listing["items"][0]["job_id"] == "job-1"
    assert client.get("/results/none", headers=KEY).status_code == 404


def test_a_failing_message_goes_to_dead_letters_never_lost(client):
    response = client.post("/jobs", json={"job_id": "zero", "divisor": 0}, headers=KEY)
    assert response.status_code == 202
    trace = response.json()["trace_id"]
    wait_until(lambda: client.get("/dead-letters", headers=KEY).json()["total"] >= 1)
    (letter,) = client.get("/dead-letters", headers=KEY).json()["items"]
    assert letter["component"] == "divide" and letter["port"] == "in"
    assert "ZeroDivisionError" in letter["error"] and letter["payload"] == {"job_id": "zero", "divisor": 0}
    assert letter["trace_id"] == trace
    metrics = client.get("/metrics").text
    assert 'dead_letters_total{component="divide"} 1.0' in metrics
    assert 'messages_errors_total{component="divide"} 1.0' in metrics


def test_rate_limit_answers_429_with_retry_after(client):
    first = client.post("/limited", json={"job_id": "r1", "divisor": 1}, headers=KEY)
    assert first.status_code == 202
    second = client.post("/limited", json={"job_id": "r2", "divisor": 1}, headers=KEY)
    assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1


def test_retry_then_circuit_breaker(client):
    Hook.status = 500
    client.post("/slow", json={"job_id": "w1", "divisor": 1}, headers=KEY)
    wait_until(lambda: client.get("/dead-letters", headers=KEY).json()["total"] == 1)
    assert len(Hook.requests) == 3  # max_attempts: 3, then dead-lettered
    client.post("/slow", json={"job_id": "w2", "divisor": 1}, headers=KEY)
    wait_until(lambda: client.get("/dead-letters", headers=KEY).json()["total"] == 2)
    assert len(Hook.requests) == 4  # the 4th failure opens the breaker: the retry is refused
    client.post("/slow", json={"job_id": "w3", "divisor": 1}, headers=KEY)
    wait_until(lambda: client.get("/dead-letters", headers=KEY).json()["total"] == 3)
    assert len(Hook.requests) == 4  # open: no call at all
    errors = [d["error"] for d in client.get("/dead-letters", headers=KEY).json()["items"]]
    assert "HTTPStatusError" in errors[0]
    assert errors[1].startswith("CircuitOpen") and errors[2].startswith("CircuitOpen")


def test_webhook_delivery(client):
    client.post("/slow", json={"job_id": "ok-1", "divisor": 2}, headers=KEY)
    wait_until(lambda: len(Hook.requests) == 1)
    assert Hook.requests == [{"job_id": "ok-1", "divisor": 2}]


def test_full_queues_answer_503_with_retry_after(client):
    Hook.delay = 1.0
    responses = [client.post("/slow", json={"job_id": f"q{i}", "divisor": 1}, headers=KEY) for i in range(6)]
    codes = [r.status_code for r in responses]
    assert codes[:3] == [202, 202, 202]  # one in flight at the webhook, two queued (QUEUE_SIZE=2)
    saturated = [r for r in responses[3:] if r.status_code == 503]
    assert saturated, codes
    assert saturated[0].headers["retry-after"] == "1" and "saturated" in saturated[0].json()["error"]


def test_source_and_window_flush_into_a_file_sink_on_shutdown(system, data_dir):
    from starlette.testclient import TestClient

    with TestClient(system.create_app()) as client:
        wait_until(lambda: 'messages_emitted_total{component="ticker"} 5.0' in client.get("/metrics").text)
    lines = [json.loads(line) for line in (data_dir / "counts.jsonl").read_text().splitlines()]
    assert sorted((line["tick_id"], line["seen"]) for line in lines) == [("t-0", 2), ("t-1", 3)]
    assert all(line["window_end"] - line["window_start"] == 3600 for line in lines)


def test_graceful_shutdown_drains_every_queue(system, data_dir):
    from starlette.testclient import TestClient

    with TestClient(system.create_app()) as client:
        for i in range(20):
            assert (
                client.post("/jobs", json={"job_id": f"d{i}", "divisor": 5}, headers=KEY).status_code == 202
            )
    database = sqlite3.connect(data_dir / "rtcheck-results.sqlite3")
    assert database.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 20


def test_postgres_without_psycopg_is_a_clear_error(system):
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg is installed here")
    kinds = importlib.import_module("rtcheck.kinds")
    with pytest.raises(RuntimeError, match="psycopg is not installed; fix: pip install"):
        kinds.PostgresRecords("postgresql://localhost/x", "store_results")


def test_structured_logs_carry_the_trace_id(system, data_dir, capfd):
    from starlette.testclient import TestClient

    with TestClient(system.create_app()) as client:
        trace = client.post("/jobs", json={"job_id": "log-1", "divisor": 0}, headers=KEY).json()["trace_id"]
        wait_until(lambda: client.get("/dead-letters", headers=KEY).json()["total"] == 1)
    records = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    letter = next(r for r in records if r["msg"] == "dead letter")
    assert letter["trace_id"] == trace and letter["component"] == "divide" and letter["level"] == "WARNING"
