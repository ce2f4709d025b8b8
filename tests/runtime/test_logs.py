"""Structured logs: JSON lines from a served process, the trace id on a dead letter, a warning
when a key is unset, and `serve --log-level` over $LOG_LEVEL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest
from autocoder_runtime.testing import free_port, served
from rtkit import AUTH, KEY, demo, json_lines, package, records, run_demo, running, wait_until


def test_a_served_system_logs_json_lines_and_a_dead_letter_carries_its_trace_id(tmp_path):
    src = package(tmp_path / "src", "demo")
    with served("demo", src, tmp_path / "data", KEY) as client:
        response = client.post(
            "/items", json={"id": "bad", "act": "reject"}, headers={**AUTH, "X-Trace-Id": "trace-log-1"}
        )
        assert response.status_code == 202
        wait_until(lambda: client.get("/dead-letters", headers=AUTH).json()["total"] == 1)
    text = (tmp_path / "demo-server.log").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    entries = json_lines(text)
    assert len(entries) == len(lines), "a log line that is not JSON"
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    (letter,) = [e for e in entries if e["msg"] == "dead letter"]
    assert letter["trace_id"] == "trace-log-1" and letter["level"] == "WARNING"
    assert letter["component"] == "work" and letter["error"].endswith("cannot handle bad")
    assert [e["msg"] for e in entries if e["logger"] == "autocoder_runtime"] == [
        "started",
        "dead letter",
        "stopped",
    ]
    assert not [e for e in entries if "API key not set" in e["msg"]]  # it is set


def test_an_unset_api_key_is_a_warning_at_startup(data, monkeypatch, caplog_all):
    monkeypatch.delenv("API_KEY")
    with running(demo()):
        pass
    warnings = [r for r in caplog_all.records if r.getMessage().startswith("API key not set")]
    assert {(r.levelname, r.fields["variable"]) for r in warnings} == {("WARNING", "API_KEY")}
    assert len(warnings) == 2  # the ingress route, and the store and dead-letter reads
    assert {r.fields.get("route") for r in warnings} == {"POST /items", None}


def serve_briefly(src, name: str, data, *args: str, **env: str) -> tuple[int, str]:
    """`python -m name serve ARGS` until ready, then SIGTERM; its exit code and output."""
    port = free_port()
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(src),
        "DATA_DIR": str(data),
        "API_KEY": KEY,
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", name, "serve", "--port", str(port), *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, output.decode()


def test_serve_log_level_overrides_the_environment(tmp_path):
    src = package(tmp_path / "src", "demo_open_ingress")
    code, output = serve_briefly(
        src, "demo_open_ingress", tmp_path / "d1", "--log-level", "warning", LOG_LEVEL="DEBUG"
    )
    assert code in (0, -signal.SIGTERM), output
    entries = json_lines(output)
    assert {e["level"] for e in entries} == {"WARNING"}, output  # no INFO, no DEBUG
    (warning,) = entries
    assert (
        warning["msg"] == "API key not set: every request will get 401"
        and warning["variable"] == "INGRESS_KEY"
    )
    code, output = serve_briefly(
        src, "demo_open_ingress", tmp_path / "d2", "--log-level", "DEBUG", LOG_LEVEL="ERROR"
    )
    levels = {e["level"] for e in json_lines(output)}
    assert {"DEBUG", "INFO", "WARNING"} <= levels, output


@pytest.mark.parametrize("how", [("--log-level", "verbose"), ("--log-level", "debug", "--port", "x")])
def test_serve_refuses_a_bad_argument(tmp_path, how):
    done = run_demo(tmp_path, "serve", *how)
    assert done.returncode == 2 and "invalid" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_log_level_in_the_environment_is_a_clear_error(tmp_path):
    done = run_demo(tmp_path, "serve", LOG_LEVEL="loud")
    assert (
        done.returncode == 2 and "unknown log level 'LOUD'" in done.stderr and "Traceback" not in done.stderr
    )


def test_logged_records_carry_their_fields(data, caplog_all):
    with running(demo()) as client:
        trace = client.post("/items", json={"id": "x", "act": "boom"}, headers=AUTH).json()["trace_id"]
        wait_until(lambda: records(caplog_all, "dead letter"))
    (letter,) = records(caplog_all, "dead letter")
    assert letter["trace_id"] == trace and letter["port"] == "in" and "RuntimeError" in letter["where"]
