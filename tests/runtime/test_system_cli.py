"""`python -m <system> dead-letters` and `replay` against the system's real SQLite file: the
dead letters are made by running the system, listed and moved back by the CLI in a child
process, and processed again by the next start."""

from __future__ import annotations

import json
import subprocess
import sys

from rtkit import AUTH, Work, demo, package, query, running, wait_until


def cli(src, data, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demo", *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(src), "DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dead_letters_listed_as_json_lines_and_replayed_by_the_cli(data, tmp_path, monkeypatch):
    monkeypatch.setattr(Work, "broken", True)
    with running(demo()) as client:
        traces = [
            client.post("/items", json={"id": f"l{i}", "n": i}, headers=AUTH).json()["trace_id"]
            for i in range(3)
        ]
        wait_until(lambda: client.get("/dead-letters", headers=AUTH).json()["total"] == 3)
    src = package(tmp_path / "src", "demo")

    listed = cli(src, data, "dead-letters")
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [x["trace_id"] for x in lines] == traces
    assert all(set(x) == {"id", "ts", "component", "port", "error", "payload", "trace_id"} for x in lines)
    assert lines[1]["payload"] == {"id": "l1", "n": 1, "ts": 0.0, "act": "ok"}
    assert lines[1]["error"] == "Rejected: logic failed: ValueError: the logic is broken for now"
    page = cli(src, data, "dead-letters", "--limit", "1", "--offset", "2")
    assert [json.loads(line)["trace_id"] for line in page.stdout.splitlines()] == traces[2:]

    one = cli(src, data, "replay", str(lines[0]["id"]))
    assert one.returncode == 0 and "replayed 1 dead letter(s)" in one.stderr
    assert [json.loads(x)["trace_id"] for x in cli(src, data, "dead-letters").stdout.splitlines()] == traces[
        1:
    ]
    assert query(data, "demo", "SELECT trace_id, component, port, direction FROM inbox") == [
        (traces[0], "work", "in", "in")
    ]
    rest = cli(src, data, "replay")
    assert rest.returncode == 0 and "replayed 2 dead letter(s)" in rest.stderr
    assert cli(src, data, "dead-letters").stdout == ""

    monkeypatch.setattr(Work, "broken", False)  # the fix is deployed: the next start delivers them
    with running(demo()) as client:
        wait_until(lambda: len(client.get("/items", headers=AUTH).json()["items"]) == 3)
        assert client.get("/items/l2", headers=AUTH).json()["n"] == 3
        assert client.get("/dead-letters", headers=AUTH).json()["total"] == 0
    assert query(data, "demo", "SELECT COUNT(*) FROM inbox") == [(0,)]
