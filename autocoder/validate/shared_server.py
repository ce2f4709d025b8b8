"""The one running system a build's path tests share (test:path.<id>, validate_tasks).

Started by the first path test that runs (a test restored from the run-cache, or up to date,
needs none), reused by every other one of the same build, stopped by the path tasks' teardown
once no path test is using it. doit -n N runs tasks in N worker processes, so the server is
found through files, not through memory:

- `state.json` names the running server: its build (a token minted when doit loaded the tasks),
  pid and port; `state.lock` serialises reading, starting and stopping it;
- every running path test holds `users.lock` shared; a teardown takes it exclusively, so it
  waits for the path tests still running in other workers before it stops the server (doit
  runs a worker's teardowns when that worker runs out of tasks, not when all workers have);
- `starts.log` gets one line per start (build token, pid, how many components it serves or
  `all`), which tests and benchmarks count.

The server is this build's child process with PR_SET_PDEATHSIG: a build killed outright takes
it along. A server left by another build (a killed one whose worker survived) is stopped
before a new one starts, after checking that the pid is still that server.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any

from autocoder.layout import CACHE, SOURCES

STATE = f"{CACHE}/paths"
API_KEY = "integration-test-key"  # the path tests' HEADERS (templates/runtime/test_path.py.j2)
URL_ENV = "AUTOCODER_TEST_SERVER"  # read by the path tests' `system` fixture
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

_OWNED: dict[int, subprocess.Popen[bytes]] = {}  # servers this process started, to reap them
_PENDING: dict[int, Any] = {}  # launched here, not waited for yet (testing.Server, by pid)


class ServerFailed(Exception):
    """The system did not start; the message quotes its log."""


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[IO[str]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, mode)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def shared_server(
    directory: Path,
    system: str,
    build: str,
    needed: Collection[str],
    wanted: Callable[[], Collection[str]],
    meanwhile: Callable[[], object] | None = None,
) -> Iterator[str]:
    """The base URL of this build's server, which runs (at least) the components `needed`;
    path tests using it hold `users.lock` shared until the block ends.

    The first path test of a build starts it with only the components `wanted()` names (those
    of the path tests about to run; SERVE_ONLY), not the whole system. A later path test whose
    components it lacks (the guess missed one) replaces it with the whole system; the one
    replaced keeps serving the path tests already using it until the teardown stops both.

    `meanwhile` (the caller's own preparation: importing httpx, loading its test) runs while a
    server this call starts boots in its own process, which a one-process build would
    otherwise leave the second core idle for; it runs before the block in any case."""
    state = directory / STATE
    with _locked(state / "users.lock", fcntl.LOCK_SH):
        with _locked(state / "state.lock", fcntl.LOCK_EX):
            found = _running(state, build)
            if found is None:
                found = _launch(directory, system, build, sorted({*wanted(), *needed}), [])
            elif found["components"] is not None and not set(needed) <= set(found["components"]):
                found = _launch(directory, system, build, None, [*found["retired"], found["pid"]])
            elif found.get("code") != code_stamp(directory, system, found["components"]):
                # launched before a generator task of this build rewrote code it serves (an
                # early launch, then `gen:` of another component): it would test the old code
                served = found["components"]
                components = None if served is None else sorted({*served, *wanted(), *needed})
                found = _launch(directory, system, build, components, [*found["retired"], found["pid"]])
            if meanwhile is not None:
                meanwhile()  # while it boots, if it is booting
            _until_ready(state, found)
        yield f"http://127.0.0.1:{found['port']}"


def served_components(directory: Path) -> set[str] | None:
    """The components the recorded server of `directory` runs (None: all of them; none when no
    server is recorded); called inside a `shared_server` block, whose server it then is (or
    one that replaced it, which serves them all)."""
    found = _read(directory / STATE)
    if found is None:
        return set()
    return None if found["components"] is None else set(found["components"])


def prestart(directory: Path, system: str, build: str, wanted: Callable[[], Collection[str]]) -> None:
    """Launch this build's server, with the components `wanted()` names, without waiting for
    it: a component's test task calls this first in a one-process build (the edit build:
    plain `doit`), so the server boots on the core that build leaves idle while the component
    is tested, and the path tests that follow find it ready. Nothing when it is launched already or nothing
    is wanted (then not asked again in this process for this build), nor while a module it
    would serve is not generated yet (asked again by the next test task)."""
    if (build, str(directory)) in _NOTHING_WANTED:
        return
    state = directory / STATE
    with _locked(state / "state.lock", fcntl.LOCK_EX):
        if _running(state, build) is not None:
            return
        components = sorted(wanted())
        if not components:
            _NOTHING_WANTED.add((build, str(directory)))
            return
        folder = directory / SOURCES / system / "components"
        if not all((folder / f"{name}.py").is_file() for name in components):
            return  # its generator has yet to run: a server now could not load it
        _launch(directory, system, build, components, [])


_NOTHING_WANTED: set[tuple[str, str]] = set()  # (build, project) whose path tests all passed


def code_stamp(directory: Path, system: str, components: Collection[str] | None) -> str:
    """What a server launched now would load of the generated system: the package's own
    modules and the modules of the components it serves (all for None), each as inode, mtime
    and size (the generators replace a file by a new one: a rewrite changes its inode). A path
    test compares it with the stamp taken at launch, so a server never tests code that a
    generator rewrote after it started."""
    package = directory / SOURCES / system
    paths = sorted(package.glob("*.py"))
    folder = package / "components"
    names = (
        sorted(components)
        if components is not None
        else sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    )
    paths += [folder / f"{name}.py" for name in ("__init__", *names)]
    digest = hashlib.sha256()
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"{path.name} {stat.st_ino} {stat.st_mtime_ns} {stat.st_size}\n".encode())
        except OSError:
            digest.update(f"{path.name} missing\n".encode())
    return digest.hexdigest()


def _read(state: Path) -> dict[str, Any] | None:
    try:
        found = json.loads((state / "state.json").read_text())
    except (OSError, ValueError):
        return None
    keys = {"build", "pid", "port", "components", "retired"}
    return found if isinstance(found, dict) and keys <= found.keys() else None


def _is_server(pid: object, system: str | None = None) -> bool:
    """Whether `pid` is alive and still a generated system's `serve` (not a reused pid)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    owned = _OWNED.get(pid)
    if owned is not None:
        return owned.poll() is None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in argv and b"-m" in argv and (system is None or system.encode() in argv)


def _running(state: Path, build: str) -> dict[str, Any] | None:
    found = _read(state)
    if found is None:
        return None
    if found["build"] != build:  # another build's, left behind
        _stop(state, found)
        return None
    if not _is_server(found["pid"]):
        return None  # died: start again (starts.log shows it)
    return found


def _launch(
    directory: Path, system: str, build: str, components: list[str] | None, retired: list[int]
) -> dict[str, Any]:
    """Launch the system (only `components`, or all of them for None) on fresh data without
    waiting, and record it (`ready`: false; `_until_ready` waits); `retired`: earlier servers
    of this build, stopped with it."""
    from autocoder_runtime.testing import Server

    from autocoder.fsutil import atomic_write

    state = directory / STATE
    data = state / f"data.{len(retired)}"
    for old in state.glob("data*") if not retired else []:
        shutil.rmtree(old, ignore_errors=True)  # every build's server starts empty
    log = state / f"server.{len(retired)}.log"
    log.unlink(missing_ok=True)
    # its data is thrown away when the next build starts one (above): a commit need not reach
    # the disk (SQLite's NORMAL: WAL synced at checkpoints only), which the path tests do not
    # observe; a commit per accepted message and per ack cost fsyncs each (~20 % of a test)
    env: dict[str, str | None] = {"LOG_LEVEL": "INFO", "SERVE_ONLY": None, "SQLITE_SYNCHRONOUS": "NORMAL"}
    if components is not None:
        env["SERVE_ONLY"] = ",".join(components)
    server = Server(system, directory / SOURCES, data, API_KEY, log, env)
    server.launch()  # PR_SET_PDEATHSIG: a killed build leaves no server
    assert server.process is not None
    _OWNED[server.process.pid] = server.process
    _PENDING[server.process.pid] = server
    running = {
        "build": build,
        "pid": server.process.pid,
        "port": server.port,
        "components": components,
        "retired": retired,
        "ready": False,
        "code": code_stamp(directory, system, components),
    }
    atomic_write(state / "state.json", json.dumps(running).encode())
    served = "all" if components is None else len(components)
    with (state / "starts.log").open("a") as starts:
        starts.write(f"{build} {server.process.pid} {served}\n")
    return running


def _until_ready(state: Path, found: dict[str, Any]) -> None:
    """Wait until the recorded server serves, then record it ready. Launched by this process:
    on its pipe (`serve --ready-fd`); by another (doit -n N workers): polling /readyz. A
    server that exits or does not serve within READY_TIMEOUT_S is ServerFailed (its log)."""
    from autocoder.fsutil import atomic_write

    if found.get("ready", True):
        return
    pid = found["pid"]
    server = _PENDING.pop(pid, None)
    try:
        if server is not None:
            server.wait_ready(READY_TIMEOUT_S)
        else:
            _poll_ready(pid, found["port"], Path(state / f"server.{len(found['retired'])}.log"))
    except AssertionError as exc:
        _stop_pid(pid)
        with contextlib.suppress(FileNotFoundError):
            (state / "state.json").unlink()
        raise ServerFailed(str(exc)) from None
    found["ready"] = True
    atomic_write(state / "state.json", json.dumps(found).encode())


def _poll_ready(pid: int, port: int, log: Path) -> None:
    """GET /readyz every 50 ms until it answers 200 (AssertionError if the process ends first
    or READY_TIMEOUT_S passes): for a server another process launched, whose pipe it holds."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and _is_server(pid):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    text = log.read_text() if log.exists() else ""
    raise AssertionError(f"server did not become ready: {text[-2000:]}")


def stop_shared_server(directory: Path, build: str) -> None:
    """doit teardown of every path task: once no path test runs, stop this build's server (a
    no-op when it is not running, or already stopped by another task's teardown), and wait
    for the servers `stop_early` asked to stop."""
    _await_stopping()
    state = directory / STATE
    if not (state / "state.json").exists():
        return
    with _locked(state / "users.lock", fcntl.LOCK_EX), _locked(state / "state.lock", fcntl.LOCK_EX):
        found = _read(state)
        if found is not None and found["build"] == build:
            _stop(state, found)


_STOPPING: list[int] = []  # servers of this process asked to stop by stop_early, not reaped yet


def stop_early(directory: Path, build: str) -> None:
    """Ask this build's server to stop, without waiting: doit runs the teardowns only when every
    task is done, and the graceful stop (~0.2 s) then adds to the build's wall time; called once
    no path test of this run is left (the `test` group is done: tasks.reporter), the server
    stops while the tasks after the tests run, and the teardown (stop_shared_server) only reaps
    it. Only servers this process started and waits for (a one-process build: the edit build);
    under `doit -n N` they belong to the workers, whose teardowns stop them as before.
    state.json goes at once, so a path test that still came would start a server of its own."""
    state = directory / STATE
    if not (state / "state.json").exists():
        return
    with _locked(state / "users.lock", fcntl.LOCK_EX), _locked(state / "state.lock", fcntl.LOCK_EX):
        found = _read(state)
        if found is None or found["build"] != build:
            return
        pids = [*found.get("retired", []), found["pid"]]
        if not all(isinstance(pid, int) and pid in _OWNED and pid not in _PENDING for pid in pids):
            return  # another process's, or never waited for: the teardown stops them
        for pid in pids:
            if _OWNED[pid].poll() is None:
                os.kill(pid, signal.SIGTERM)
                _STOPPING.append(pid)
        with contextlib.suppress(FileNotFoundError):
            (state / "state.json").unlink()


def _await_stopping() -> None:
    """Reap the servers stop_early signalled (SIGKILL after STOP_TIMEOUT_S), without a second
    SIGTERM: one is the graceful stop, a second may cut it short."""
    while _STOPPING:
        pid = _STOPPING.pop()
        owned = _OWNED.pop(pid, None)
        if owned is None:
            continue
        try:
            owned.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            owned.kill()
            owned.wait()


def _stop(state: Path, found: dict[str, Any]) -> None:
    """SIGTERM (the graceful stop), SIGKILL after STOP_TIMEOUT_S, of the server and the ones it
    replaced; then forget them."""
    for pid in [*found.get("retired", []), found["pid"]]:
        _stop_pid(pid)
    with contextlib.suppress(FileNotFoundError):
        (state / "state.json").unlink()


def _stop_pid(pid: object) -> None:
    pending = _PENDING.pop(pid, None) if isinstance(pid, int) else None
    if pending is not None and isinstance(pid, int):  # never waited for: close its pipe, kill it
        pending.__exit__()
        _OWNED.pop(pid, None)
    if _is_server(pid):
        assert isinstance(pid, int)
        os.kill(pid, signal.SIGTERM)
        owned = _OWNED.pop(pid, None)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        if owned is not None:
            try:
                owned.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                owned.kill()
                owned.wait()
        else:
            while _is_server(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _is_server(pid):
                os.kill(pid, signal.SIGKILL)
