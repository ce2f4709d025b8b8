"""The end of a `doit` run with Autocoder's reporter (tasks/reporter.py: _exit_now): the process
exits with doit's own exit code, after the atexit handlers and without the interpreter's
teardown; AUTOCODER_HARD_EXIT=0 keeps the teardown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DODO = '''
import atexit, threading, time
from pathlib import Path
from autocoder.tasks.reporter import AutocoderReporter

DOIT_CONFIG = {"reporter": AutocoderReporter, "verbosity": 0, "backend": "sqlite3", "dep_file": ".doit.db"}


class Teardown:
    """Runs only in the interpreter's own teardown."""

    def __del__(self):
        Path("teardown-ran").write_text("1")


KEEP = Teardown()


def _ok():
    atexit.register(lambda: Path("atexit-ran").write_text("1"))
    return True


def _late():
    Path("thread-done").write_text("1")


def _thread():
    threading.Thread(target=lambda: (time.sleep(0.3), _late())).start()  # not a daemon: waited for
    return True


def _raise():
    raise RuntimeError("an error, not a failure")


def task_ok():
    return {"actions": [_ok], "uptodate": [False]}


def task_bad():
    return {"actions": [lambda: False], "uptodate": [False]}


def task_error():
    return {"actions": [_raise], "uptodate": [False]}


def task_thread():
    return {"actions": [_thread], "uptodate": [False]}
'''


def run(project: Path, *args: str, hard: str | None = None) -> subprocess.CompletedProcess:
    for name in ("teardown-ran", "atexit-ran", "thread-done"):
        (project / name).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "AUTOCODER_HARD_EXIT"}
    if hard is not None:
        env["AUTOCODER_HARD_EXIT"] = hard
    return subprocess.run(
        [sys.executable, "-m", "doit", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_doit_run_exits_with_doits_code_after_atexit_without_the_interpreters_teardown(tmp_path):
    (tmp_path / "dodo.py").write_text(DODO)
    ok = run(tmp_path, "ok")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ".  ok" in ok.stdout
    assert (tmp_path / "atexit-ran").exists() and not (tmp_path / "teardown-ran").exists()
    # doit's codes: 1 when a task failed, 2 when one raised (even with a failure besides)
    failed = run(tmp_path, "ok", "bad")
    assert failed.returncode == 1 and "TaskFailed - taskid:bad" in failed.stdout
    errored = run(tmp_path, "--continue", "bad", "error")
    assert errored.returncode == 2 and "RuntimeError" in errored.stdout + errored.stderr
    assert not (tmp_path / "teardown-ran").exists()


def test_the_interpreters_teardown_stays_when_asked_or_when_a_thread_runs(tmp_path):
    (tmp_path / "dodo.py").write_text(DODO)
    kept = run(tmp_path, "ok", hard="0")
    assert kept.returncode == 0 and (tmp_path / "teardown-ran").exists()
    threaded = run(tmp_path, "thread")
    assert threaded.returncode == 0
    assert (tmp_path / "thread-done").exists() and (tmp_path / "teardown-ran").exists()
