"""One validation task's run of generated code (its tests, its benchmark) in a forked child.

Why a child: generated code may crash the interpreter (a segfault in a C extension,
os._exit), hang where no signal reaches it, or leave threads, module state and memory behind.
In a child of its own that costs that task alone: the build process carries on and reports the
task as failed, saying what happened.

Why fork, not a new interpreter: the build process (doit's worker) imports pytest, hypothesis,
the runtime and the generated package's shared modules once (`preload`); each child starts
with them in memory in a few milliseconds, where a fresh interpreter spends about a second
importing them again.

The child sends its result back pickled over a pipe. While it runs it sends heartbeats, each
with how long the parent should now wait for the next one (a test's time limit plus a grace):
the parent kills the child's process group when that deadline passes, so a test that its own
SIGALRM limit cannot stop (stuck in C code, signals blocked) is still stopped.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import signal
import struct
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from autocoder.stackroom import with_room

if TYPE_CHECKING:
    from autocoder.validate.warm_worker import Worker

T = TypeVar("T")

GRACE_S = 30.0  # beyond a heartbeat's own limit, before the parent kills the child
_HEADER = struct.Struct(">cI")  # frame kind (b"H" heartbeat, b"R" result, b"E" error) + length
_channel: int | None = None  # in a child: the write end of its pipe


class ChildFailed(Exception):
    """The child crashed, was killed, or raised: the message says which, for the task's failure."""


def heartbeat(limit_s: float) -> None:
    """In a child: "wait up to `limit_s` (+ GRACE_S) for my next heartbeat or my result".
    Does nothing outside a child (a run in the build process itself, as in unit tests)."""
    if _channel is not None:
        send(_channel, b"H", struct.pack(">d", limit_s))


def run_forked(
    function: Callable[..., T],
    args: tuple[Any, ...],
    limit_s: float,
    *,
    worker: Worker | None = None,
    prepare: Callable[[], None] | None = None,
) -> T:
    """`function(*args)` in a forked child; its return value (picklable), or ChildFailed.
    `limit_s`: how long the child may run before its first heartbeat (then each heartbeat says).
    `worker`: the project's warm worker (validate/warm_worker.py), which forks the child from a
    process that has done `prepare`'s imports already; when it does not answer, the child is
    forked from this process, after `prepare` (and a rebuild starts a worker for the next build)."""
    if not hasattr(os, "fork"):  # no fork on this platform: in this process, unprotected
        return function(*args)
    if worker is not None:
        frames = worker.run(function, args, limit_s)
        if frames is not None:
            return _answer(*frames)
    if prepare is not None:
        prepare()
    frames = _fork(function, args, limit_s)
    if worker is not None:
        worker.start_on_rebuild()
    return _answer(*frames)


def _fork(function: Callable[..., Any], args: tuple[Any, ...], limit_s: float) -> tuple[bytes, bytes]:
    """The child's final frame: its pickled result (R) or its error (E)."""
    read_end, write_end = os.pipe()
    # the parent's objects go to the permanent generation for the fork: the child's collector
    # then never walks them, which would write to (and so copy) every page they are on
    gc.freeze()
    try:
        pid = os.fork()
    except BaseException:
        gc.unfreeze()
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # pragma: no cover - the child; its effects are asserted by the parent's tests
        os.close(read_end)
        run_child(write_end, function, args)
    gc.unfreeze()
    os.close(write_end)
    with contextlib.suppress(OSError):  # the child does the same: whichever runs first
        os.setpgid(pid, pid)
    killed: list[int] = []

    def kill() -> None:
        _kill(pid)  # and reaped
        killed.append(pid)

    try:
        frame = collect(read_end, limit_s, kill)
    except BaseException:  # Ctrl-C or a failure here: the child (in its own group) must not outlive it
        _kill(pid)
        raise
    finally:
        os.close(read_end)
    if frame is None:  # the child is gone without a result
        return b"E", exit_status(_reap(pid)).encode()
    if not killed:
        _reap(pid)
    return frame


def _answer(kind: bytes, payload: bytes) -> Any:
    if kind == b"R":
        return pickle.loads(payload)  # noqa: S301 - our own child's pickle (see warm_worker on its socket)
    raise ChildFailed(payload.decode(errors="replace"))


def run_child(channel: int, function: Callable[..., Any], args: tuple[Any, ...]) -> None:  # pragma: no cover
    """Run and report, then leave at once: os._exit skips atexit handlers and buffered output
    the child inherited from the parent (which the parent still owns)."""
    global _channel
    code = 0
    try:
        os.setpgid(0, 0)  # its own process group: a kill reaches what it started too
        _channel = channel
        try:
            result = with_room(function, *args)  # stackroom: deep in the parent's stack
            send(channel, b"R", pickle.dumps(result))
        except BaseException:  # noqa: BLE001 - everything is reported to the parent
            send(channel, b"E", traceback.format_exc()[-4000:].encode())
    except BaseException:  # noqa: BLE001 - the pipe itself failed: the exit code tells the parent
        code = 70
    finally:
        os._exit(code)


def encode_frame(kind: bytes, payload: bytes) -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


def send(channel: int, kind: bytes, payload: bytes) -> None:
    """One frame to `channel` (a pipe or a socket)."""
    view = memoryview(encode_frame(kind, payload))
    while view:
        view = view[os.write(channel, view) :]


def next_frame(channel: int, buffer: bytearray, deadline: float) -> tuple[bytes, bytes] | None:
    """The next frame from `channel` (bytes read beyond it stay in `buffer`); None at the end of
    the stream; TimeoutError when `deadline` (time.monotonic) passes first."""
    while True:
        if len(buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(buffer)
            if len(buffer) >= _HEADER.size + length:
                payload = bytes(buffer[_HEADER.size : _HEADER.size + length])
                del buffer[: _HEADER.size + length]
                return kind, payload
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        ready, _, _ = select.select([channel], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(channel, 1 << 16)
        if not chunk:
            return None
        buffer += chunk


def collect(
    channel: int, limit_s: float, kill: Callable[[], None], buffer: bytearray | None = None
) -> tuple[bytes, bytes] | None:
    """Read frames until the child's result (R) or error (E); None when the stream ends first.
    Each heartbeat moves the deadline; when it passes, `kill()` and an error saying so."""
    buffer = bytearray() if buffer is None else buffer
    deadline = time.monotonic() + limit_s + GRACE_S
    while True:
        try:
            frame = next_frame(channel, buffer, deadline)
        except TimeoutError:
            kill()
            return b"E", f"killed after {limit_s + GRACE_S:.0f} s without progress (hung)".encode()
        if frame is None or frame[0] != b"H":
            return frame
        limit_s = struct.unpack(">d", frame[1])[0]
        deadline = time.monotonic() + limit_s + GRACE_S


def exit_status(status: int) -> str:
    """What a child's wait status says about a child that reported no result."""
    if os.WIFSIGNALED(status):
        return f"crashed: killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"crashed: exited with code {os.waitstatus_to_exitcode(status)} before reporting a result"


def _reap(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return status


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        _reap(pid)
