"""The test tier's warm worker (validate/warm_worker.py) gives the in-process path's answers:
the same verdict and JUnit report for a passing and a failing test file; a crashing or hung
child is that run's failure with its reason while the worker carries on; a worker of another
key (a runtime file touched) is not asked but stopped; a killed or silent worker costs a
fallback to the in-process run; an idle worker stops by itself; `off` starts none.

Which process ran a test is read from the test itself: it writes its parent's pid (the worker,
or this process for a run forked here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from junits import normalized_junit

from autocoder.validate import background, isolated, testing, warm_worker
from autocoder.validate.testing import run_tests

PASSING = """
import os
from pathlib import Path

from hypothesis import given, settings, strategies as st


def test_records_its_parent():
    Path(os.environ["WARM_PARENT_FILE"]).write_text(str(os.getppid()))


@settings(max_examples=20, database=None)
@given(st.integers())
def test_property(x):
    assert x + 0 == x
"""

FAILING = """
def test_passes():
    assert True


def test_fails():
    assert sorted([3, 1, 2]) == [1, 2, 4], "wrong on purpose"
"""

CRASHING = """
import os
import signal
from pathlib import Path


def test_crashes():
    Path(os.environ["WARM_PARENT_FILE"]).write_text(str(os.getppid()))
    os.kill(os.getpid(), signal.SIGSEGV)
"""

HANGING = """
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST_TIMEOUT_S = 0.5


def test_blocks_the_alarm_and_hangs():
    Path(os.environ["WARM_PARENT_FILE"]).write_text(str(os.getpid()))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # no time limit can fire
    time.sleep(20)
"""
CONFTEST = "TEST_TIMEOUT_S = 0.5  # as the generated conftest declares it\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Iterator[Path]:
    """A project's generated package with the test files above; every worker it started is
    stopped at the end."""
    src = tmp_path_factory.mktemp("warm") / "generated" / "src"
    (src / "tests").mkdir(parents=True)
    for name, text in [
        ("passing", PASSING),
        ("failing", FAILING),
        ("crashing", CRASHING),
        ("hanging", HANGING),
    ]:
        (src / "tests" / f"test_{name}.py").write_text(text)
    (src / "tests" / "conftest.py").write_text(CONFTEST)
    yield src
    folder = src.parent / ".cache" / "warm"
    for status in folder.glob("*.json") if folder.is_dir() else []:
        warm_worker.Worker(folder, src.parent.parent, status.stem, (), 0, False).stop()


@pytest.fixture(scope="module")
def module_env(project) -> Iterator[Path]:
    """Workers on (60 s idle); the file where each test run records its parent. The same for
    the whole module: the environment is part of a worker's key, so the tests share one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(warm_worker.ENV, "60")
        patch.setenv("WARM_PARENT_FILE", str(project.parent.parent / "parent"))
        yield project.parent.parent / "parent"


@pytest.fixture
def env(module_env, monkeypatch) -> Path:
    monkeypatch.setenv(warm_worker.ENV, "60")
    return module_env


def _run(src: Path, name: str, junit: Path) -> testing.TestResult:
    scratch = junit.parent / f"scratch-{name}"
    scratch.mkdir(exist_ok=True)
    return run_tests(src, f"tests/test_{name}.py", junit, scratch)


def _ready(src: Path, junit: Path) -> warm_worker.Worker:
    """This key's worker, ready: a rebuild's run (in process unless one is ready) starts it."""
    worker = warm_worker.worker_for(src, rebuild=True)
    assert worker is not None
    junit.write_text("")  # a report from an earlier run: a rebuild
    deadline = time.monotonic() + 90
    while not worker.ready.is_file():
        if not worker.status.is_file():
            assert _run(src, "passing", junit).ok
        assert time.monotonic() < deadline, "the warm worker did not warm up in 90 s"
        time.sleep(0.1)
    return worker


def _pid(worker: warm_worker.Worker) -> int:
    return background.identify(worker.status)[0]


def test_the_worker_gives_the_in_process_answers(project, env, monkeypatch, tmp_path):
    reference = {}
    with monkeypatch.context() as off:
        off.setenv(warm_worker.ENV, "off")
        for name in ("passing", "failing"):
            result = _run(project, name, tmp_path / f"{name}-reference.xml")
            reference[name] = (
                result.to_json(),
                normalized_junit((tmp_path / f"{name}-reference.xml").read_bytes()),
            )
    assert reference["passing"][0]["tests"] == 2 and reference["passing"][0]["exit_code"] == 0
    assert reference["failing"][0]["failures"] == 1, reference["failing"]
    worker = _ready(project, tmp_path / "start.xml")
    for name in ("passing", "failing"):
        result = _run(project, name, tmp_path / f"{name}.xml")
        assert (result.to_json(), normalized_junit((tmp_path / f"{name}.xml").read_bytes())) == reference[
            name
        ]
        assert int(env.read_text()) == _pid(worker)  # run by the worker's child


def test_a_crashing_or_hung_child_fails_its_run_and_the_worker_carries_on(
    project, env, monkeypatch, tmp_path
):
    worker = _ready(project, tmp_path / "start.xml")
    crashed = _run(project, "crashing", tmp_path / "crashing.xml")
    assert not crashed.ok and "killed by SIGSEGV" in crashed.output, crashed.output
    assert int(env.read_text()) == _pid(worker)
    monkeypatch.setattr(isolated, "GRACE_S", 0.5)
    start = time.monotonic()
    hung = _run(project, "hanging", tmp_path / "hanging.xml")
    assert time.monotonic() - start < 15  # the limit and the grace, not the 20 s sleep
    assert not hung.ok and "hung" in hung.output, hung.output
    child = int(env.read_text())
    deadline = time.monotonic() + 10
    while background.alive(child):  # the worker kills the child the build gave up on
        assert time.monotonic() < deadline, "the hung child outlived its run"
        time.sleep(0.05)
    assert _run(project, "passing", tmp_path / "passing.xml").ok
    assert int(env.read_text()) == _pid(worker)


def test_a_killed_worker_costs_a_fallback(project, env, tmp_path):
    worker = _ready(project, tmp_path / "start.xml")
    pid = _pid(worker)
    os.kill(pid, signal.SIGKILL)
    assert _run(project, "passing", tmp_path / "start.xml").ok
    assert int(env.read_text()) == os.getpid()  # in process
    assert not background.alive(pid)
    # the rebuild started another (its command line may not show yet: the status file's pid)
    assert json.loads(worker.status.read_text())["pid"] != pid


def test_a_worker_of_another_key_is_not_asked(project, env, tmp_path):
    worker = _ready(project, tmp_path / "start.xml")
    old = _pid(worker)
    import autocoder_runtime

    touched = Path(autocoder_runtime.__file__).parent / "testing.py"
    stat = touched.stat()
    try:
        os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        assert _run(project, "passing", tmp_path / "start.xml").ok
        assert int(env.read_text()) == os.getpid()  # in process
        assert not background.alive(old)  # stopped: its code is not the current code
        assert not worker.status.exists()
        touched_key = warm_worker.worker_for(project, rebuild=True)
        assert touched_key is not None and touched_key.status.is_file()  # started for the next build
        touched_key.stop()
    finally:
        os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# a process that looks like a ready worker (its command line names the status file, it listens
# on the socket) and never answers, as a hung one would
SILENT = (
    "import socket, sys, time\ns = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[2])\n"
    "s.listen()\ntime.sleep(60)\n"
)


def test_a_silent_worker_costs_a_fallback_and_is_stopped(project, env, monkeypatch, tmp_path):
    monkeypatch.setattr(warm_worker, "ACCEPT_S", 1.0)
    worker = warm_worker.worker_for(project, rebuild=False)
    assert worker is not None
    worker.stop()
    address = Path(tempfile.mkdtemp(prefix=warm_worker.SOCKET_PREFIX)) / "socket"
    stand_in = subprocess.Popen([sys.executable, "-c", SILENT, str(worker.status), str(address)])  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while not address.exists() or not background.names(stand_in.pid, worker.status):
            assert time.monotonic() < deadline, "the stand-in did not start listening"
            time.sleep(0.05)
        worker.status.write_text(json.dumps({"pid": stand_in.pid, "socket": str(address)}))
        worker.ready.write_text("")
        start = time.monotonic()
        assert _run(project, "passing", tmp_path / "passing.xml").ok
        assert time.monotonic() - start < 20
        assert int(env.read_text()) == os.getpid()  # in process
        assert stand_in.wait(timeout=10) is not None  # stopped
        assert not worker.status.exists() and not address.parent.exists()
    finally:
        stand_in.kill()
        stand_in.wait()


def test_an_idle_worker_stops_by_itself_and_off_starts_none(project, env, monkeypatch, tmp_path):
    monkeypatch.setenv(warm_worker.ENV, "2")
    worker = _ready(project, tmp_path / "start.xml")
    pid = _pid(worker)
    deadline = time.monotonic() + 30
    while background.alive(pid) or worker.status.exists():
        assert time.monotonic() < deadline, "the idle worker did not stop"
        time.sleep(0.1)
    assert not worker.ready.exists()
    monkeypatch.setenv(warm_worker.ENV, "off")
    assert warm_worker.worker_for(project, rebuild=True) is None
    assert _run(project, "passing", tmp_path / "start.xml").ok  # a rebuild, in process
    assert int(env.read_text()) == os.getpid()
    assert not list((project.parent / ".cache" / "warm").glob("*.json"))


def test_the_key_follows_the_environment_not_build_only_settings_or_generated_code(project, env, monkeypatch):
    def key() -> str:
        worker = warm_worker.worker_for(project, rebuild=False)
        assert worker is not None
        return worker.key

    first = key()
    monkeypatch.setenv("AUTOCODER_BUILD_ID", "another build")  # `autocoder build` sets it anew
    monkeypatch.setenv("AUTOCODER_CACHE_DIR", str(project / "elsewhere"))  # the run-cache's
    monkeypatch.setenv("AUTOCODER_DISPATCH", "fifo")  # the build process's dispatch order
    assert key() == first
    # a folder of the generated code on sys.path (an in-process pytest session adds its tests')
    monkeypatch.setattr(sys, "path", [str(project / "tests"), str(project), *sys.path])
    assert key() == first
    root = project.parent.parent  # on sys.path when doit loads the project's dodo.py
    monkeypatch.setattr(sys, "path", [str(root), *sys.path])
    first = key()
    (root / ".doit.db-journal").write_text("")  # each build changes the project's listing
    assert key() == first
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(project / "elsewhere"))
    assert key() != first


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_worker_warms_up_once_the_build_that_started_it_is_over(project, env, tmp_path):
    """While the project's build lock is held (the build that started the worker runs), the
    worker waits without working (its 3-6 CPU-s warm-up would compete with that build); once
    the lock is free it warms up and serves."""
    import fcntl

    from autocoder.tasks.lock import LOCK

    worker = warm_worker.worker_for(project, rebuild=True)
    assert worker is not None
    worker.stop()  # this key's worker from an earlier test
    held = os.open(project.parent.parent / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker.start()
        pid = json.loads(worker.status.read_text())["pid"]  # its command line may not show yet
        time.sleep(2.0)
        assert background.alive(pid) and not worker.ready.exists()
        assert _cpu_s(pid) < 0.6  # started Python and waits: no import of pytest or the compiler
    finally:
        os.close(held)  # the build is over
    deadline = time.monotonic() + 90
    while not worker.ready.is_file():
        assert time.monotonic() < deadline, "the warm worker did not warm up once the lock was free"
        time.sleep(0.1)
    assert _run(project, "passing", tmp_path / "passing.xml").ok
    assert int(env.read_text()) == pid  # served by the worker's child
