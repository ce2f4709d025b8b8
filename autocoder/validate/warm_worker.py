"""The project's warm worker: a background process that has imported, once, what the test
tier's runs need (pytest, hypothesis, the runtime's test helpers) and run the warm-up pytest
session, and the compiler (it compiled the project's blueprints once: tasks/warm_compile.py),
and that forks a child for each run a build asks of it: a test run, or `check` and `ir`. An
edit build is one fresh `doit` process: without the worker it pays those imports (~1.5 s for
the tests, ~0.4 s for the compiler) before its first run of each.

Protocol (a Unix socket; frames as validate/isolated.py's pipe): the build sends one request
(Q: the key, then the pickled function, arguments, time limit, working directory, environment
and sys.path); the worker forks a child, says so (a first heartbeat, H, with the limit) and
the child runs `function(*args)` with the request's working directory, environment and
sys.path, sending heartbeats and its result (R) or error (E) straight to the build, exactly as
a child forked by the build itself would. The build enforces the deadlines: when one passes it
closes the connection, and the worker kills that child's process group. A child that dies
without reporting gets its exit status (E, "crashed: ...") from the worker.

What it never does: import generated code. The children import the current generated modules
from disk, as children forked by the build after `preload` would find them... except that those
find the shared models in memory: the worker's children import them fresh, which costs a few
milliseconds and cannot be stale.

It is keyed by everything that could make an answer differ from the in-process path: the
files of Autocoder and of the runtime (path, size and mtime_ns of each), Python, the installed
packages (the mtime of every sys.path directory: an install or uninstall changes it), sys.path
itself (without the folders under generated/) and the environment (without what changes
between a shell's commands or builds and what only the build process reads: VOLATILE,
BUILD_ONLY; each request carries its whole environment, which the child takes on). The
worker checks, before and after its imports, that its own key is the one it was started for.
A build whose key has no ready worker runs in process, stops the workers of other keys and,
on a rebuild, starts one for its key.

Life cycle, as the mypy daemon's (validate/background.py): started in the background by a
build that is a rebuild (the task's JUnit report existed); it warms up once that build is over
(the project's build lock, tasks/lock.py, is free): warming up costs 3-6 CPU-seconds (the
compiler, compiling the blueprints, pytest, hypothesis, the warm-up session), which a build
from scratch (its `ir` is a rebuild: `check` just ran) paid on its two busy cores, for a worker
that is there for the next build; ready once warmed up and listening
(a `.ready` marker); stops after AUTOCODER_WARM_WORKER seconds without a request (default
900); `off` never starts one (tests turn it off by default). A build never waits on a worker
that is not ready, never hangs on one (connecting, sending and its first answer are bounded)
and runs in process when anything is wrong (dead, silent, another key, a broken stream).

Trust: its status file and ready marker are 0600 in a 0700 folder (generated/.cache/warm/),
its socket is in a private 0700 directory of its own; both ends also check that the peer is
our own user (SO_PEERCRED). The pickles are only exchanged with our own user's processes.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import pickle
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autocoder.tasks.lock import LOCK
from autocoder.validate import background, isolated

ENV = "AUTOCODER_WARM_WORKER"
IDLE_S = 900  # the worker stops itself after this many seconds without a request
CONNECT_S = 2.0  # connecting and sending the request, at most
ACCEPT_S = 5.0  # the worker's first answer (it forked the child), at most
WARMUP_S = 120  # a worker not ready this long after it was started is taken for stuck
SOCKET_PREFIX = "autocoder-warm-"
PACKAGES = ("autocoder", "autocoder_runtime")  # whose files (path, size, mtime) key the worker
Frame = tuple[bytes, bytes]
# Not in the key: what a shell changes between commands, and what only the build process reads
# (the run-cache's, the mypy daemon's and the LLM's settings, strictness, signing, progress, the
# dispatch order) or
# sets anew for each build (AUTOCODER_BUILD_ID). The child gets them all, from its request.
VOLATILE = frozenset({"PWD", "OLDPWD", "SHLVL", "_", "PYTEST_CURRENT_TEST"})
BUILD_ONLY = (
    "AUTOCODER_BUILD_ID",
    "AUTOCODER_CACHE",
    "AUTOCODER_CHECKOV",
    "AUTOCODER_COMPILE_MEMO",
    "AUTOCODER_DISPATCH",
    "AUTOCODER_LLM_",
    "AUTOCODER_MYPY_",
    "AUTOCODER_PAUSE_",
    "AUTOCODER_PROGRESS",
    "AUTOCODER_SIGNING_KEY",
    "AUTOCODER_STRICT",
)


@dataclass
class Worker(background.Files):
    """One project's warm worker for one key: where its files are, how it is asked and started."""

    folder: Path  # generated/.cache/warm
    project: Path
    key: str
    path: tuple[str, ...]  # sys.path without generated/'s folders
    idle_s: int
    rebuild: bool  # this build re-runs a task that ran before: start a worker for the next one
    served: bool = False

    def run(self, function: Callable[..., Any], args: tuple[Any, ...], limit_s: float) -> Frame | None:
        """The child's final frame (R or E) for `function(*args)` from this key's ready worker;
        None when there is none or it did not answer properly (it is then stopped)."""
        if not self.ready.is_file():
            return None
        try:
            pid, data = background.identify(self.status)
            address = _socket_of(data)
        except (OSError, ValueError):
            self.forget()
            return None
        try:
            request = pickle.dumps(
                {
                    "function": function,
                    "args": args,
                    "cwd": os.getcwd(),
                    "env": dict(os.environ),
                    "sys_path": list(sys.path),
                }
            )
        except Exception:  # noqa: BLE001 - not picklable (a local function): only in process
            return None
        frame = _ask(address, (pid, self.status), self.key.encode() + request, limit_s)
        if frame is None:
            self.stop(pid)
            return None
        self.served = True
        return frame

    def start_on_rebuild(self) -> None:
        """After a run in process: on a rebuild, start this key's worker for the next build."""
        if self.rebuild and not self.served:
            self.start()

    def start(self) -> None:
        """Start this key's worker in the background (other keys' are stopped first); returns at
        once. One that is starting or ready is left alone, unless it has been starting for
        WARMUP_S (stuck: replaced). Failing to start costs only speed."""
        try:
            self.stop_others()
            background.private_folder(self.folder)
            descriptor = self._claim()
            if descriptor is None:
                return
            directory = tempfile.mkdtemp(prefix=SOCKET_PREFIX)  # 0700
        except OSError:
            return
        address = str(Path(directory) / "socket")
        try:
            pid = background.spawn(
                [sys.executable, "-m", __name__, str(self.status), str(self.ready), self.key]
                + [str(self.idle_s), address, json.dumps(self.path)],
                cwd=self.project,
            )
            with os.fdopen(descriptor, "w", encoding="utf-8") as status:
                json.dump({"pid": pid, "socket": address}, status)
        except OSError:
            _remove_socket_directory(address)
            self.forget()

    def _claim(self) -> int | None:
        """This key's status file, made by this build alone (O_EXCL: of two builds starting a
        worker at once, one does); None when a worker of this key is starting or ready."""
        try:
            return os.open(self.status, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if not self._replace_stuck():
                return None
        return os.open(self.status, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def _replace_stuck(self) -> bool:
        """With a status file present: whether to start anew (its worker died, or is stuck
        warming up; then stopped and forgotten)."""
        try:
            pid, _ = background.identify(self.status)
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                if time.time() - self.status.stat().st_mtime < 2:
                    return False  # being written by a start of this same moment
            self.forget()
            return True
        with contextlib.suppress(OSError):
            if self.ready.is_file() or time.time() - self.status.stat().st_mtime < WARMUP_S:
                return False
        self.stop(pid)
        return True

    def stop(self, pid: int | None = None) -> None:
        """Stop this key's worker (SIGTERM, then SIGKILL) and forget it."""
        if pid is None:
            with contextlib.suppress(OSError, ValueError):
                pid, _ = background.identify(self.status)
        if pid is not None:
            identified = pid
            background.stop(identified, lambda: background.terminate(identified))
        self.forget()

    def stop_others(self) -> None:
        """Stop the workers of other keys in this project (other code, Python or environment)."""
        names = [p.name for p in self.folder.iterdir()] if self.folder.is_dir() else []
        for key in sorted({name.split(".")[0] for name in names} - {self.key}):
            Worker(self.folder, self.project, key, (), 0, False).stop()

    def forget(self) -> None:
        """Remove this key's status file, ready marker and socket directory."""
        with contextlib.suppress(OSError, ValueError):
            _remove_socket_directory(_socket_of(json.loads(self.status.read_text(encoding="utf-8"))))
        for path in (self.ready, self.status):
            path.unlink(missing_ok=True)


def worker_for(src: Path, rebuild: bool) -> Worker | None:
    """The warm worker of the project whose generated package is `src` (generated/src), for
    this process's code, Python and environment (None: AUTOCODER_WARM_WORKER=off)."""
    if not background.enabled(ENV):
        return None
    generated = Path(os.path.abspath(src.parent))
    project = generated.parent
    # without the generated code's folders (the package's, its tests' that an in-process pytest
    # session of this build added): the worker never imports from them, and a key that changed
    # with them would have one build's tasks stop each other's workers
    path = tuple(p for p in sys.path if not _inside(p, generated))
    folder = generated / ".cache" / "warm"
    idle_s = background.idle_seconds(ENV, IDLE_S)
    return Worker(folder, project, key(path, project), path, idle_s, rebuild)


def _inside(entry: str, folder: Path) -> bool:
    """Whether sys.path's `entry` is a folder under `folder`. A relative entry ("" for the
    working directory, an editable install's path-hook marker) is no folder here: the build
    and the worker resolve it against different working directories."""
    return os.path.isabs(entry) and Path(os.path.normpath(entry)).is_relative_to(folder)


def key(path: tuple[str, ...], project: Path) -> str:
    """What the worker's answers depend on besides the request itself (module docstring). The
    project's own folder (on sys.path when doit runs its dodo.py) is not stamped: every build
    changes its listing (doit's database journal), and the worker imports nothing from it."""
    from importlib.util import find_spec

    def stamp(entry: str) -> int:
        if not os.path.isabs(entry) or _inside(entry, project):
            return 0
        try:
            return os.stat(entry or ".").st_mtime_ns
        except OSError:
            return -1

    environment = sorted(
        (k, v) for k, v in os.environ.items() if k not in VOLATILE and not k.startswith(BUILD_ONLY)
    )
    parts = [
        sys.version,
        sys.executable,
        sys.prefix,
        *(_tree(Path(str(spec.origin)).parent) for spec in map(find_spec, PACKAGES) if spec),
        [(entry, stamp(entry)) for entry in path],
        environment,
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _tree(folder: Path) -> list[tuple[str, int, int]]:
    """Each file under `folder` (bytecode caches aside) with its size and mtime_ns."""
    found = []
    for root, directories, files in os.walk(folder):
        directories[:] = sorted(d for d in directories if d != "__pycache__")
        for name in sorted(files):
            stat = os.stat(os.path.join(root, name))
            found.append((os.path.join(root, name), stat.st_size, stat.st_mtime_ns))
    return found


def _socket_of(data: dict[str, Any]) -> str:
    address = data.get("socket")
    if not isinstance(address, str) or not _ours(Path(address).parent):
        raise ValueError("not a warm worker's socket")
    return address


def _ours(directory: Path) -> bool:
    """Whether `directory` is a socket directory this module makes (so it may be removed)."""
    return directory.parent == Path(tempfile.gettempdir()) and directory.name.startswith(SOCKET_PREFIX)


def _remove_socket_directory(address: str) -> None:
    shutil.rmtree(Path(address).parent, ignore_errors=True)


def _same_user(connection: socket.socket) -> bool:
    """Whether the process at the other end of `connection` runs as our own user."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", credentials)
    return uid == os.getuid()


def _ask(address: str, worker: tuple[int, Path], request: bytes, limit_s: float) -> Frame | None:
    """Send one request and read the child's final frame; None when the worker does not take
    it, does not answer within ACCEPT_S or the stream breaks before the child's answer.
    `worker`: its pid and status file."""
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError:
        return None
    child = 0
    try:
        connection.settimeout(CONNECT_S)
        connection.connect(address)
        if not _same_user(connection):
            return None
        connection.sendall(isolated.encode_frame(b"Q", request))
        connection.settimeout(None)
        buffer = bytearray()
        accepted = isolated.next_frame(connection.fileno(), buffer, time.monotonic() + ACCEPT_S)
        if accepted is None or accepted[0] != b"A":
            return None
        child = struct.unpack(">i", accepted[1])[0]
        # the child's deadline passing: closing the connection has the worker kill the child
        return isolated.collect(connection.fileno(), limit_s, lambda: _hang_up(connection), buffer)
    except (OSError, TimeoutError, struct.error):
        return None
    except BaseException:  # Ctrl-C: closing the connection has the worker kill the child
        _hang_up(connection)
        raise
    finally:
        connection.close()
        if child:
            _kill_orphan(child, *worker)


def _hang_up(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


def _kill_orphan(child: int, worker: int, status: Path) -> None:
    """A child left running by a worker that died mid-request would write the same reports
    as the run that now replaces it: killed, if it is still that worker's child (its command
    line, inherited from the worker, names the worker's status file)."""
    if background.alive(worker):
        return  # the worker kills its own children when the connection closes
    with contextlib.suppress(OSError):
        if background.names(child, status):
            os.killpg(child, signal.SIGKILL)


# ------------------------------------------------------------------------------- the worker


@dataclass
class _Running:
    connection: socket.socket
    pid: int


def serve(status: Path, ready: Path, expected: str, idle_s: int, address: str, path: list[str]) -> int:
    """The worker's process: check its key, warm up, listen, fork a child per request, stop
    after `idle_s` without one (or on SIGTERM); it removes its files as it exits."""
    sys.path[:] = path
    listener: socket.socket | None = None
    running: dict[int, _Running] = {}
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        if not background.wait_until_unlocked(status.parents[3] / LOCK, idle_s, status):
            return 0  # a build held the project this long: no one is waiting for this worker
        if key(tuple(path), status.parents[3]) != expected:
            return 3
        from autocoder.tasks import warm_compile
        from autocoder.validate.testing import warm_up

        warm_compile.warm_up(status.parents[3])  # `check` and `ir` come first in a build
        warm_up()
        if key(tuple(path), status.parents[3]) != expected:  # a file changed as it imported
            return 3
        gc.collect()
        gc.freeze()  # the children's collectors never walk (and so copy) the worker's objects
        old_mask = os.umask(0o177)
        try:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(address)
        finally:
            os.umask(old_mask)
        listener.listen(16)
        os.close(os.open(ready, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        _loop(listener, running, idle_s, expected)
        return 0
    finally:
        for child in running.values():
            _kill_group(child.pid)
        if listener is not None:
            listener.close()
        with contextlib.suppress(OSError, ValueError):
            if json.loads(status.read_text(encoding="utf-8")).get("pid") == os.getpid():
                ready.unlink(missing_ok=True)
                status.unlink(missing_ok=True)
        _remove_socket_directory(address)


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _loop(listener: socket.socket, running: dict[int, _Running], idle_s: int, expected: str) -> None:
    last = time.monotonic()
    while running or time.monotonic() - last < idle_s:
        timeout = 0.02 if running else max(0.0, idle_s - (time.monotonic() - last))
        connections = {child.connection.fileno(): pid for pid, child in running.items()}
        readable, _, _ = select.select([listener.fileno(), *connections], [], [], timeout)
        for fileno in readable:
            if fileno == listener.fileno():
                last = time.monotonic()
                _accept(listener, running, expected)
            elif _hung_up(running[connections[fileno]].connection):
                _kill_group(connections[fileno])  # the build gave up on it (deadline, Ctrl-C)
        _reap(running)
        if running:
            last = time.monotonic()


def _accept(listener: socket.socket, running: dict[int, _Running], expected: str) -> None:
    """Take one request: check the peer and the key, fork the child, say so (A + its pid)."""
    connection, _ = listener.accept()
    try:
        connection.settimeout(CONNECT_S)
        if not _same_user(connection):
            raise OSError("a process of another user")
        buffer = bytearray()
        request = isolated.next_frame(connection.fileno(), buffer, time.monotonic() + CONNECT_S)
        if request is None or request[0] != b"Q":
            raise OSError("not a request")
        requested_key, payload = request[1][:16].decode(errors="replace"), request[1][16:]
        if requested_key != expected:
            raise OSError("another key")
        connection.settimeout(None)
        pid = os.fork()
    except (OSError, TimeoutError):
        connection.close()
        return
    if pid == 0:  # pragma: no cover - the child: its effects are asserted by the build's tests
        listener.close()
        for child in running.values():
            child.connection.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        isolated.run_child(connection.fileno(), _call, (payload,))
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    running[pid] = _Running(connection, pid)
    with contextlib.suppress(OSError):
        connection.sendall(isolated.encode_frame(b"A", struct.pack(">i", pid)))


def _call(payload: bytes) -> Any:
    """In the child: take on the request's working directory, environment and sys.path, then
    run its function (unpickled here: its module is imported from disk, in the child)."""
    request = pickle.loads(payload)  # noqa: S301 - from our own user's build (SO_PEERCRED, 0700)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:] = request["sys_path"]
    return request["function"](*request["args"])


def _hung_up(connection: socket.socket) -> bool:
    try:
        return not connection.recv(1, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True


def _reap(running: dict[int, _Running]) -> None:
    """Collect exited children; one that died without a result gets its exit status sent."""
    for pid in list(running):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 0
        if done == 0:
            continue
        child = running.pop(pid)
        if status != 0:  # a child that reported exits 0
            with contextlib.suppress(OSError):
                child.connection.sendall(isolated.encode_frame(b"E", isolated.exit_status(status).encode()))
        child.connection.close()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


if __name__ == "__main__":
    status_file, ready_file, expected_key, idle, socket_address, path_json = sys.argv[1:]
    path = json.loads(path_json)
    sys.exit(serve(Path(status_file), Path(ready_file), expected_key, int(idle), socket_address, path))
