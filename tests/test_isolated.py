"""Generated tests and benchmarks run in a forked child (validate/isolated.py): a crash, an
exception or a hang costs that run alone, reported with what happened; heartbeats keep a long
but progressing run alive; a hung run is killed with whatever it started."""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from autocoder.validate import isolated
from autocoder.validate.isolated import ChildFailed, heartbeat, run_forked
from autocoder.validate.testing import run_tests


def _value(x: int) -> dict[str, int]:
    return {"pid": os.getpid(), "double": 2 * x}


def _raise() -> None:
    raise ValueError("broken on purpose")


def _crash() -> None:
    faulthandler.disable()  # pytest's, inherited: it would print this process's stack to the log
    os.kill(os.getpid(), signal.SIGSEGV)


def _exit() -> None:
    os._exit(4)


def _progress(seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        heartbeat(0.3)
        time.sleep(0.05)
    return "done"


def _hang_with_a_child(pid_file: Path) -> None:
    grandchild = subprocess.Popen(["sleep", "60"])  # noqa: S607 - a fixed command on PATH
    pid_file.write_text(str(grandchild.pid))
    time.sleep(60)


def test_the_child_result_comes_back_and_the_child_is_another_process():
    result = run_forked(_value, (21,), 10)
    assert result["double"] == 42 and result["pid"] != os.getpid()


def test_an_exception_a_crash_and_an_exit_are_reported_not_raised_in_the_parent():
    with pytest.raises(ChildFailed, match="ValueError: broken on purpose"):
        run_forked(_raise, (), 10)
    with pytest.raises(ChildFailed, match="killed by SIGSEGV"):
        run_forked(_crash, (), 10)
    with pytest.raises(ChildFailed, match="exited with code 4"):
        run_forked(_exit, (), 10)


def test_heartbeats_keep_a_progressing_run_alive(monkeypatch):
    monkeypatch.setattr(isolated, "GRACE_S", 0.2)
    assert run_forked(_progress, (1.5,), 0.3) == "done"  # 1.5 s, beyond the first 0.5 s deadline


def test_a_hung_run_is_killed_with_what_it_started(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(isolated, "GRACE_S", 0.2)
    pid_file = tmp_path / "grandchild.pid"
    start = time.monotonic()
    with pytest.raises(ChildFailed, match="hung"):
        run_forked(_hang_with_a_child, (pid_file,), 1.0)
    assert time.monotonic() - start < 30
    grandchild = int(pid_file.read_text())
    for _ in range(100):  # SIGKILL is asynchronous; the sleep's parent (init) reaps it
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        state = Path(f"/proc/{grandchild}/stat").read_text().split()[2]
        assert state == "Z", "the hung run's own child survived it"


CONFTEST = """
import pytest
from autocoder_runtime.testing import time_limit

TEST_TIMEOUT_S = 0.5  # as the generated conftest declares it


@pytest.fixture(autouse=True)
def _time_limit():
    with time_limit(TEST_TIMEOUT_S):
        yield
"""

HANGING = """
import signal
import time


def test_passes():
    assert True


def test_blocks_the_alarm_and_hangs():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # its time limit cannot fire
    time.sleep(20)
"""

CRASHING = """
import os
import signal


def test_crashes():
    os.kill(os.getpid(), signal.SIGSEGV)
"""


def _project(tmp_path: Path, name: str, text: str) -> Path:
    src = tmp_path / "src"
    (src / "tests").mkdir(parents=True, exist_ok=True)
    (src / "tests" / f"{name}.py").write_text(text)
    return src


def test_a_test_that_its_own_time_limit_cannot_stop_is_killed_after_it(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(isolated, "GRACE_S", 0.5)
    src = _project(tmp_path, "test_hanging", HANGING)
    (src / "tests" / "conftest.py").write_text(CONFTEST)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    start = time.monotonic()
    result = run_tests(src, "tests/test_hanging.py", tmp_path / "junit.xml", scratch)
    assert time.monotonic() - start < 15  # the limit and the grace, not the 20 s sleep
    assert not result.ok
    assert "hung" in result.output and "tests/test_hanging.py" in result.output


def test_a_test_that_crashes_the_interpreter_fails_its_run_and_only_its_run(tmp_path: Path):
    src = _project(tmp_path, "test_crashing", CRASHING)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = run_tests(src, "tests/test_crashing.py", tmp_path / "junit.xml", scratch)
    assert not result.ok and "killed by SIGSEGV" in result.output
    assert run_forked(_value, (1,), 10)["double"] == 2  # this process carries on
