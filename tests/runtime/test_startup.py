"""What `python -m <system>` does while it starts (autocoder_runtime.cli): the cyclic garbage
collector paused until the system serves, then on again with start-up's objects frozen; the
database the CLI opens before the server starts taken over by the system's start, not opened
a second time."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from autocoder_runtime import cli
from autocoder_runtime.component import data_dir
from autocoder_runtime.database import open_database
from rtkit import HERE, KEY, demo

SERVE_AND_REPORT = """
import gc, json, os, signal, sys, threading
sys.path.insert(0, {here!r})
import rtkit
from autocoder_runtime.cli import main

read, write = os.pipe()

def report():
    port = os.read(read, 100).decode().strip()  # the ready line: the system serves
    print(json.dumps({{"port": port, "on": gc.isenabled(), "frozen": gc.get_freeze_count()}}), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

def build():
    print(json.dumps({{"building_on": gc.isenabled()}}), flush=True)
    return rtkit.BUILDERS["demo"]()

threading.Thread(target=report, daemon=True).start()
sys.exit(main(build, ["serve", "--port", "0", "--ready-fd", str(write)]))
"""


def test_serve_pauses_the_collector_until_it_serves_then_resumes_it_frozen(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "API_KEY": KEY, "LOG_LEVEL": "INFO"}
    env.pop("SERVE_ONLY", None)
    run = subprocess.run(
        [sys.executable, "-c", SERVE_AND_REPORT.format(here=str(HERE))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode in (0, -signal.SIGTERM), run.stderr[-3000:]
    building, served = (json.loads(line) for line in run.stdout.splitlines())
    assert building == {"building_on": False}  # the system's modules and models: collector paused
    assert int(served["port"]) > 0
    assert served["on"] is True  # serving: collections run again...
    assert served["frozen"] > 1000  # ...past start-up's objects
    assert '"undrained": 0' in run.stderr and "Traceback" not in run.stderr


def test_other_commands_run_with_the_collector_paused_and_leave_it_on(data, capsys):
    seen = []

    def build():
        seen.append(gc.isenabled())
        return demo()

    assert gc.isenabled()
    assert cli.main(build, ["dead-letters"]) == 0
    assert seen == [False]
    assert gc.isenabled() and gc.get_freeze_count() == 0  # only `serve` freezes
    assert capsys.readouterr().out == ""  # no dead letter yet


def test_a_collector_turned_off_before_stays_off(data):
    gc.disable()
    try:
        with cli.startup_gc() as resume:
            resume()
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_start_takes_over_the_database_opened_before_it(data):
    """The CLI opens the database before the server starts (a failure is one line, not a
    traceback in uvicorn's startup); the start uses it, and the stop closes it."""
    system = demo()
    opened = open_database("sqlite", system.name, data_dir(), None)
    system.db = opened

    async def run() -> None:
        await system.start()
        assert system.db is opened
        assert await opened.inbox_count() == 0
        await system.stop(1.0)

    asyncio.run(run())
    assert system.db is None and opened.writer is None  # closed by the stop
    assert Path(data_dir(), "demo.sqlite3").exists()
