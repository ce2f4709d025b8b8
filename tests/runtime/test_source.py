"""A source emits into the inbox like an accepted message: bounded by max_messages, and quiet
while the system stops, so that a stop drains everything it emitted."""

from __future__ import annotations

import time
from typing import ClassVar

from autocoder_runtime.kinds import Source
from autocoder_runtime.messages import Message
from pydantic import BaseModel
from rtkit import Hook, Item, configured, make, metric, query, records, running, spec, wait_until


class Ticks(Source):
    outputs: ClassVar[dict[str, type[BaseModel]]] = {"out": Item}
    spec = spec(config={"interval_s": 0.005})

    def generate(self, seq: int, ts: float) -> Message:
        return {"id": f"t{seq}", "n": seq, "ts": ts}


def ticking(**config: object):
    files = configured(Hook, config={"target": "file", "path": "ticks.jsonl"})
    ticks = configured(Ticks, config={"interval_s": 0.005, **config})
    return make("src", {"ticks": ticks, "files": files}, [("ticks", "out", "files", "in")])


def lines(data) -> list[str]:
    path = data / "ticks.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def test_a_source_stops_at_max_messages(data):
    with running(ticking(max_messages=7)) as client:
        wait_until(lambda: len(lines(data)) == 7)
        time.sleep(0.1)
        assert metric(client.get("/metrics").text, "src_messages_emitted_total", component="ticks") == 7
    assert len(lines(data)) == 7


def test_a_stop_drains_everything_a_running_source_emitted(data, caplog_all):
    for run in range(3):
        with running(ticking()) as client:
            wait_until(lambda run=run: len(lines(data)) > 10 * (run + 1))
            emitted = metric(client.get("/metrics").text, "src_messages_emitted_total", component="ticks")
            assert emitted
        stopped = records(caplog_all, "stopped")[-1]
        assert stopped["undrained"] == 0, f"run {run}: the source emitted during the drain"
        assert query(data, "src", "SELECT COUNT(*) FROM inbox") == [(0,)]
