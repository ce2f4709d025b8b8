"""The type tier's answers do not depend on how they were computed (validate/types.py,
validate/mypy_daemon.py): a mistyped component gets the same mypy errors from a cold in-process
run with no cache at all, from a project cache seeded by an earlier runtime's machine-wide
cache, and from the project's daemon; the daemon sees an edit made after it warmed up; a dead
or silent daemon costs a fallback to the in-process run, never a hang or a stale answer; an
idle daemon stops by itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autocoder.validate import mypy_daemon, types
from autocoder.validate.types import shared_cache, typecheck

PYPROJECT = (
    '[tool.mypy]\nplugins = ["pydantic.mypy"]\ndisallow_untyped_defs = true\nwarn_unused_ignores = true\n'
)
MODELS = (  # as the runtime's MessageModel: the pydantic plugin types __init__ from the fields
    "from pydantic import BaseModel, ConfigDict\n\n\nclass Reading(BaseModel):\n"
    '    model_config = ConfigDict(extra="forbid", strict=True)\n\n    sensor: str\n    value: float\n'
)
GOOD = (
    "from .models import Reading\n\n\ndef make(v: float) -> Reading:\n"
    "    return Reading(sensor='s', value=v)\n"
)
# the pydantic plugin's errors (an unknown field, a field's type), a return type, and one in the
# tests (a dependent of the edited module)
BAD = (
    "from .models import Reading\n\n\ndef make(v: float) -> int:\n"
    "    return Reading(sensor=1, value=v, extra=2)  # mistyped\n"
)
TEST = "from mini.logic import make\n\n\ndef test_make() -> None:\n    assert make(1.0).value == 1.0\n"
EXPECTED_RULES = {"call-arg", "arg-type", "return-value", "attr-defined"}


def _project(root: Path, logic: str) -> Path:
    src = root / "generated" / "src"
    (src / "mini").mkdir(parents=True)
    (src / "tests").mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "mini" / "__init__.py").write_text("")
    (src / "mini" / "models.py").write_text(MODELS)
    (src / "mini" / "logic.py").write_text(logic)
    (src / "tests" / "__init__.py").write_text("")
    (src / "tests" / "test_logic.py").write_text(TEST)
    return src


def _check(src: Path) -> list[tuple[str, int, int, str, str]]:
    findings = typecheck(src, "mini", src.parent / ".cache" / "mypy")
    return [(f.path, f.line, f.col, f.rule, f.message) for f in findings]


def _daemon(src: Path) -> mypy_daemon.Daemon:
    cache = src.parent / ".cache" / "mypy"
    paths = ["mini", "tests"]
    daemon = mypy_daemon.daemon_for(src, cache, types._flags(src, cache), paths)
    assert daemon is not None
    return daemon


def _wait_ready(daemon: mypy_daemon.Daemon) -> None:
    deadline = time.monotonic() + 90
    while not daemon.ready.is_file():
        assert time.monotonic() < deadline, "the daemon did not warm up in 90 s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list:
    """The mistyped component's errors from mypy in process, no cache of any kind (a first
    run starts no daemon; daemons on: its cache keeps the fine-grained dependencies)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUTOCODER_MYPY_CACHE", "off")
        env.setenv("AUTOCODER_MYPY_DAEMON", "60")
        found = _check(_project(tmp_path_factory.mktemp("reference"), BAD))
    assert {rule for _, _, _, rule, _ in found} == EXPECTED_RULES, found
    return found


@pytest.fixture(scope="module")
def shared(reference, tmp_path_factory) -> Path:
    """A machine-wide cache root holding only an earlier runtime's cache: the reference
    project's (what that runtime's first project would have published)."""
    root = tmp_path_factory.mktemp("shared")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUTOCODER_MYPY_CACHE", str(root))
        env.setenv("AUTOCODER_MYPY_DAEMON", "60")
        earlier = shared_cache("0" * 16)
    assert earlier is not None
    reference_project = tmp_path_factory.getbasetemp() / "reference0"
    shutil.copytree(reference_project / "generated" / ".cache" / "mypy", earlier)
    return root


def test_a_seeded_cache_and_the_daemon_give_the_uncached_answer(reference, shared, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCODER_MYPY_CACHE", str(shared))
    monkeypatch.setenv("AUTOCODER_MYPY_DAEMON", "60")
    src = _project(tmp_path / "p", BAD)
    published = shared_cache()
    assert published is not None and not published.exists()  # only the earlier runtime's
    assert _check(src) == reference  # a first run, seeded from it: in process, no daemon
    assert published.is_dir()  # this runtime's is published
    daemon = _daemon(src)
    assert not daemon.status.exists()
    (src / "mini" / "logic.py").write_text(GOOD)
    leftover = daemon.folder / "0123456789abcdef-cache"  # of another key, whose daemon idled out
    leftover.mkdir(parents=True)
    (daemon.folder / "0123456789abcdef.ready").write_text("ready\n")
    try:
        assert _check(src) == []  # a rebuild: in process, then a daemon starts
        assert sorted(p.name for p in daemon.folder.iterdir() if p.name.startswith("0123")) == []
        _wait_ready(daemon)
        (src / "mini" / "logic.py").write_text(BAD)  # written after the daemon's first check
        answer = daemon.check()
        assert answer is not None and answer[1] == 1
        assert _check(src) == reference
        (src / "mini" / "logic.py").write_text(GOOD + "\n")
        assert _check(src) == []  # the fix is seen too: nothing stale
        _same_size_edit_within_the_second(src / "mini" / "logic.py", GOOD + "\n")
        assert {finding[3] for finding in _check(src)} == {"arg-type"}  # the daemon's answer
        assert daemon.check() is not None
    finally:
        daemon.stop()
    assert not daemon.status.exists() and not daemon.cache.exists()


def test_a_dead_or_silent_daemon_falls_back_to_the_in_process_run(reference, shared, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCODER_MYPY_CACHE", str(shared))
    monkeypatch.setenv("AUTOCODER_MYPY_DAEMON", "60")
    src = _project(tmp_path / "p", BAD)
    assert _check(src) == reference
    daemon = _daemon(src)
    try:
        assert _check(src) == reference
        _wait_ready(daemon)
        pid = mypy_daemon._status(daemon.status)[0]
        os.kill(pid, signal.SIGKILL)  # dead: the status file stays behind
        _wait_dead(pid)
        assert _check(src) == reference
        assert not daemon.ready.exists()  # forgotten; a new one is starting
        _wait_ready(daemon)
    finally:
        daemon.stop()
    # a daemon that accepts the request and never answers (its pid: a process of this test)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "silent.sock"))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    # its command line names the status file, as a real daemon's does
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(daemon.status)])
    cmdline, deadline = Path(f"/proc/{stand_in.pid}/cmdline"), time.monotonic() + 10
    while str(daemon.status).encode() not in cmdline.read_bytes().split(b"\0"):  # seen empty at first
        assert time.monotonic() < deadline, "the stand-in never showed its command line"
        time.sleep(0.01)
    try:
        daemon.folder.mkdir(parents=True, exist_ok=True)
        connection = json.dumps({"pid": stand_in.pid, "connection_name": str(tmp_path / "silent.sock")})
        daemon.status.write_text(connection)
        daemon.ready.write_text("ready\n")
        monkeypatch.setattr(mypy_daemon, "WAIT_S", 1.0)
        silent = _daemon(src)
        assert silent.check() is None  # timed out, asked to stop, killed: forgotten
        assert stand_in.wait(timeout=10) == -signal.SIGKILL
        assert not silent.status.exists() and not silent.ready.exists()
        monkeypatch.setenv("AUTOCODER_MYPY_DAEMON", "5")  # the one this rebuild starts idles out
        assert _check(src) == reference
        _wait_ready(silent)
    finally:
        stand_in.kill()
        listener.close()
        silent.stop()


def test_an_idle_daemon_stops_by_itself(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCODER_MYPY_CACHE", str(shared))
    monkeypatch.setenv("AUTOCODER_MYPY_DAEMON", "2")
    src = _project(tmp_path / "p", GOOD)
    assert _check(src) == []
    assert _check(src) == []
    daemon = _daemon(src)
    try:
        _wait_ready(daemon)
        pid = mypy_daemon._status(daemon.status)[0]
        _wait_dead(pid)
    finally:
        daemon.stop()


def test_off_starts_none(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCODER_MYPY_DAEMON", "off")
    src = _project(tmp_path / "p", GOOD)
    cache = src.parent / ".cache" / "mypy"
    assert mypy_daemon.daemon_for(src, cache, types._flags(src, cache), ["mini"]) is None


def _wait_dead(pid: int) -> None:
    """Until `pid` has exited (a zombie nobody reaped counts: the daemon is not our child)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        assert time.monotonic() < deadline, f"process {pid} still runs after 60 s"
        time.sleep(0.1)


def _same_size_edit_within_the_second(path: Path, text: str) -> None:
    """Rewrite `path` (holding `text`) with a mistyped text of the same length, its mtime in
    the same whole second as before (a later nanosecond), as a quick regeneration would."""
    before = path.stat().st_mtime_ns
    second = before // 10**9 * 10**9
    if before - second >= 10**9 - 1000:  # no later nanosecond left in that second
        os.utime(path, ns=(second, second))
        before = second
    mistyped = text.replace("sensor='s'", "sensor=1.5")
    assert len(mistyped) == len(text) and mistyped != text
    path.write_text(mistyped)
    os.utime(path, ns=(second, before + 1000))


def test_an_edit_of_the_same_size_within_the_same_second_is_seen(tmp_path, monkeypatch):
    """mypy trusts its cache for a file whose size and whole-second mtime are unchanged: a
    regenerated module of the same length written within the second of the last check kept its
    old verdict. The type tier moves such a file's mtime so that mypy reads it (the daemon's
    case: test_a_seeded_cache_and_the_daemon_give_the_uncached_answer)."""
    monkeypatch.setenv("AUTOCODER_MYPY_DAEMON", "off")
    src = _project(tmp_path, GOOD)
    logic = src / "mini" / "logic.py"
    assert _check(src) == []
    _same_size_edit_within_the_second(logic, GOOD)
    assert {finding[3] for finding in _check(src)} == {"arg-type"}
    logic.write_text(GOOD)
    assert _check(src) == []
