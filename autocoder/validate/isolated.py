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
from typing import Any, TypeVar

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
        _send(_channel, b"H", struct.pack(">d", limit_s))


def run_forked(function: Callable[..., T], args: tuple[Any, ...], limit_s: float) -> T:
    """`function(*args)` in a forked child; its return value (picklable), or ChildFailed.
    `limit_s`: how long the child may run before its first heartbeat (then each heartbeat says)."""
    if not hasattr(os, "fork"):  # no fork on this platform: in this process, unprotected
        return function(*args)
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
        _child(write_end, function, args)
    gc.unfreeze()
    os.close(write_end)
    with contextlib.suppress(OSError):  # the child does the same: whichever runs first
        os.setpgid(pid, pid)
    try:
        frames = _collect(read_end, pid, limit_s)
    except BaseException:  # Ctrl-C or a failure here: the child (in its own group) must not outlive it
        _kill(pid)
        raise
    finally:
        os.close(read_end)
    kind, payload = frames
    if kind == b"R":
        result: T = pickle.loads(payload)  # noqa: S301 - our own child's pickle, over our own pipe
        return result
    raise ChildFailed(payload.decode(errors="replace"))


def _child(channel: int, function: Callable[..., Any], args: tuple[Any, ...]) -> None:  # pragma: no cover
    """Run and report, then leave at once: os._exit skips atexit handlers and buffered output
    the child inherited from the parent (which the parent still owns)."""
    global _channel
    code = 0
    try:
        os.setpgid(0, 0)  # its own process group: a kill reaches what it started too
        _channel = channel
        try:
            result = function(*args)
            _send(channel, b"R", pickle.dumps(result))
        except BaseException:  # noqa: BLE001 - everything is reported to the parent
            _send(channel, b"E", traceback.format_exc()[-4000:].encode())
    except BaseException:  # noqa: BLE001 - the pipe itself failed: the exit code tells the parent
        code = 70
    finally:
        os._exit(code)


def _send(channel: int, kind: bytes, payload: bytes) -> None:
    data = _HEADER.pack(kind, len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(channel, view) :]


def _collect(read_end: int, pid: int, limit_s: float) -> tuple[bytes, bytes]:
    """Read frames until the result; kill the child when a deadline passes."""
    buffer = b""
    deadline = time.monotonic() + limit_s + GRACE_S
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _kill(pid)
            return b"E", f"killed after {limit_s + GRACE_S:.0f} s without progress (hung)".encode()
        ready, _, _ = select.select([read_end], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_end, 1 << 16)
        if not chunk:  # the child is gone without a result
            return b"E", _exit_status(pid).encode()
        buffer += chunk
        while len(buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(buffer)
            if len(buffer) < _HEADER.size + length:
                break
            payload = buffer[_HEADER.size : _HEADER.size + length]
            buffer = buffer[_HEADER.size + length :]
            if kind == b"H":
                deadline = time.monotonic() + struct.unpack(">d", payload)[0] + GRACE_S
                continue
            _reap(pid)
            return kind, payload


def _exit_status(pid: int) -> str:
    status = _reap(pid)
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
