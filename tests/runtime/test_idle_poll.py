"""The dispatcher of an idle system looks for entries other processes add (a `replay`,
another replica's lapsed leases) less and less often, down to once a second (each look is a
write transaction), and still delivers what they add, as what the system accepts itself."""

from __future__ import annotations

import asyncio
import json
import time

from autocoder_runtime.component import data_dir
from autocoder_runtime.database import InboxItem, opened
from autocoder_runtime.system import POLL_S
from rtkit import AUTH, demo, running, wait_until


def test_an_idle_dispatcher_looks_less_often_and_still_delivers_what_another_process_adds(data):
    assert POLL_S == (0.2, 1.0)
    with running(demo()) as client:
        db = client.app.state.system.database()
        time.sleep(1.5)  # idle: 0.2, 0.4, 0.8 s between looks so far
        before = db.commits
        time.sleep(3.0)
        looks = db.commits - before
        assert 1 <= looks <= 5, looks  # every 0.2 s: 15

        # what another process adds (as `python -m demo replay` does) is found by a look
        item = InboxItem("api", "out", "out", json.dumps({"id": "outside", "n": 1}), "a" * 32)
        with opened("sqlite", "demo", data_dir(), None) as other:
            asyncio.run(other.inbox_add([item]))
        start = time.monotonic()
        wait_until(
            lambda: client.get("/items/outside", headers=AUTH).status_code == 200,
            timeout=POLL_S[1] + 5,
            what="the entry another process added, delivered",
        )
        assert time.monotonic() - start < POLL_S[1] + 5

        time.sleep(3.0)  # idle again, at the longest interval by now: an accept wakes it
        accepted = client.post("/items", json={"id": "inside", "n": 2}, headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        wait_until(lambda: client.get("/items/inside", headers=AUTH).status_code == 200, timeout=5)
