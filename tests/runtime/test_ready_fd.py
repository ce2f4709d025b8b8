"""`serve --ready-fd FD`: the server says on an inherited pipe when it serves (its port, then
end of file), so the build and tests wait on the pipe instead of polling /readyz
(autocoder_runtime.testing launch / wait_ready / Server.launch)."""

from __future__ import annotations

import os
import signal

import httpx
import pytest
from autocoder_runtime.testing import Server, launch, wait_ready
from rtkit import AUTH, KEY, package, run_demo


def environment(src, data, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "DATA_DIR": str(data), "API_KEY": KEY, **extra}


def test_the_port_comes_on_the_pipe_once_the_system_serves(tmp_path):
    src = package(tmp_path / "src", "demo")
    log = tmp_path / "server.log"
    with log.open("w") as log_file:
        process, ready = launch("demo", 0, environment(src, tmp_path / "data"), log_file)
    try:
        port = wait_ready(process, ready, log, 60)
        assert port > 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            # one request each, no retry: the pipe said so only once /readyz answers 200
            assert client.get("/readyz").json() == {"ready": True}
            accepted = client.post("/items", json={"id": "a"}, headers=AUTH)
            assert accepted.status_code == 202, accepted.text
        with pytest.raises(OSError):
            os.fstat(ready)  # wait_ready closed its end
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code in (0, -signal.SIGTERM), log.read_text()[-2000:]
    assert '"msg": "started"' in log.read_text()


def test_a_server_that_exits_before_serving_ends_the_wait_with_its_log(tmp_path):
    src = package(tmp_path / "src", "demo")
    log = tmp_path / "server.log"
    env = environment(src, tmp_path / "data", SERVE_ONLY="nope")
    with log.open("w") as log_file:
        process, ready = launch("demo", 0, env, log_file)
    with pytest.raises(AssertionError, match="SERVE_ONLY names 'nope'"):
        wait_ready(process, ready, log, 120)
    # it exited by itself (end of file on the pipe), not killed when the wait timed out
    assert process.returncode == 2


def test_server_launch_lets_the_caller_work_before_it_waits(tmp_path):
    src = package(tmp_path / "src", "demo")
    with Server("demo", src, tmp_path / "data", KEY, tmp_path / "server.log") as server:
        server.launch()
        assert server.process is not None and server.process.poll() is None
        server.wait_ready(60)
        with server.client() as client:
            assert client.get("/readyz").status_code == 200
        assert server.terminate() in (0, -signal.SIGTERM)
        server.start(60)  # again, on the same data and port
        with server.client() as client:
            assert client.get("/healthz").json() == {"status": "ok"}
    with pytest.raises(RuntimeError, match="not launched"):
        Server("demo", src, tmp_path / "data", KEY, tmp_path / "other.log").wait_ready(1)


def test_a_ready_fd_that_is_not_open_is_one_line_and_exit_2(tmp_path):
    run = run_demo(tmp_path, "serve", "--port", "1", "--ready-fd", "987", API_KEY=KEY)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == (
        "error: --ready-fd 987 is not an open file descriptor of this process; fix: pass the write "
        "end of a pipe the parent left open for it (Popen pass_fds)"
    )
