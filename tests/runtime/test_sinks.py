"""Sinks: webhook headers expand only declared secrets; a file sink stays inside DATA_DIR and
keeps one handle open for its lifetime."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from autocoder_runtime.kinds import expand_secrets
from autocoder_runtime.testing import delivered
from rtkit import AUTH, Api, Hook, configured, hooked, make, running, wait_until


def test_webhook_headers_expand_declared_secrets_only(data, peer, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", "s3cret")
    monkeypatch.setenv("UNDECLARED", "leak")
    headers = {
        "Authorization": "Bearer $HOOK_TOKEN",
        "X-Braced": "${HOOK_TOKEN}-x",
        "X-Home": "$HOME/x",
        "X-Undeclared": "${UNDECLARED}",
        "X-Price": "5$",
    }
    with running(hooked("hk", peer.url, headers=headers, secrets=("HOOK_TOKEN",))) as client:
        assert client.post("/items", json={"id": "a"}, headers=AUTH).status_code == 202
        wait_until(lambda: peer.received)
    sent = peer.received[0][2]
    assert sent["authorization"] == "Bearer s3cret"
    assert sent["x-braced"] == "s3cret-x"
    assert sent["x-home"] == "$HOME/x"  # not a declared secret: literal, never the environment
    assert sent["x-undeclared"] == "${UNDECLARED}"
    assert sent["x-price"] == "5$"


def test_expand_secrets_text():
    os.environ.setdefault("HOME", "/root")
    assert expand_secrets("$HOME and ${HOME}", ()) == "$HOME and ${HOME}"
    assert expand_secrets("$A$B", ("A",)) == os.environ.get("A", "") + "$B"


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def file_system(path: str):
    files = configured(Hook, config={"target": "file", "path": path})
    return make(
        "fs",
        {"api": Api, "files": files},
        [("api", "out", "files", "in")],
        ingress=[{"component": "api", "path": "/items"}],
    )


def open_handles(path: Path) -> int:
    """File descriptors of this process open on `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            pass
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs Linux /proc")
def test_a_file_sink_appends_json_lines_through_one_open_handle(data):
    target = (data / "out" / "items.jsonl").resolve()
    with running(file_system("out/items.jsonl")) as client:
        assert open_handles(target) == 1
        for i in range(20):
            assert client.post("/items", json={"id": f"f{i}", "n": i}, headers=AUTH).status_code == 202
        wait_until(lambda: target.exists() and len(target.read_text().splitlines()) == 20)
        assert open_handles(target) == 1  # not one per message
    assert open_handles(target) == 0  # closed on stop
    lines = target.read_text().splitlines()
    assert lines[0] == '{"act": "ok", "id": "f0", "n": 0, "ts": 0.0}'
    assert sorted(lines) == sorted({f'{{"act": "ok", "id": "f{i}", "n": {i}, "ts": 0.0}}' for i in range(20)})


def test_a_file_sink_appends_across_restarts(data):
    for ident in ("a", "b"):
        with running(file_system("items.jsonl")) as client:
            assert client.post("/items", json={"id": ident}, headers=AUTH).status_code == 202
            wait_until(lambda ident=ident: ident in read(data / "items.jsonl"))
    lines = (data / "items.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]


@pytest.mark.parametrize("path", ["../x.jsonl", "a/../../x.jsonl", "/tmp/x.jsonl", "link/x.jsonl"])
def test_a_file_sink_path_leaving_data_dir_is_refused_at_open(data, tmp_path, path):
    data.mkdir(parents=True, exist_ok=True)
    (tmp_path / "elsewhere").mkdir()
    (data / "link").symlink_to(tmp_path / "elsewhere")
    writers = {t for t in threading.enumerate() if t.name == "db-write"}
    with pytest.raises(ValueError, match="leaves the data directory"), running(file_system(path)):
        pass
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "elsewhere" / "x.jsonl").exists()
    # the failed start left nothing behind: no database writer thread, no open database file
    assert {t for t in threading.enumerate() if t.name == "db-write"} <= writers
    if Path("/proc/self/fd").exists():
        assert open_handles((data / "fs.sqlite3").resolve()) == 0


@pytest.mark.parametrize("target", ["file", "log", "webhook"])
def test_delivered_reads_back_what_a_sink_delivered(data, target):
    """What a generated sink example asserts: the message arrived where the sink sends it (its
    file under DATA_DIR, its log record, a webhook), normalised by its schema, and only this
    run's messages (an earlier line in the same file is not counted)."""
    config = {"target": target, "path": "out/hook.jsonl", "url": "http://127.0.0.1:9/unused"}
    sink = configured(Hook, config=config)
    if target == "file":
        (data / "out").mkdir(parents=True)
        (data / "out" / "hook.jsonl").write_text('{"id": "earlier"}\n')
    got = delivered(sink, "in", [{"id": "a1"}, {"id": "b2", "n": 3}])
    assert got == [{"id": "a1", "n": 0, "ts": 0.0, "act": "ok"}, {"id": "b2", "n": 3, "ts": 0.0, "act": "ok"}]


def test_delivered_sees_nothing_from_a_sink_that_delivers_nothing(data):
    """A sink that lost its messages would fail a generated example: `delivered` reads the
    destination, not what the sink was handed."""

    class Silent(Hook):
        async def aprocess(self, port, message):
            return []

    silent = configured(Silent, config={"target": "file", "path": "silent.jsonl"})
    assert delivered(silent, "in", [{"id": "a1"}]) == []
