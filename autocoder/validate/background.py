"""What a project's background helpers share (the mypy daemon, validate/mypy_daemon.py; the
warm worker, validate/warm_worker.py): their on/off and idle setting, how a build identifies
one from its status file before it asks or signals it, how it is started and how it is stopped.

A helper is only ever identified by its status file AND its command line (which names that
file): a pid reused by another process after the helper died is neither asked nor killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OFF = ("off", "0", "false", "no")
STOP_S = 5.0  # how long a helper asked to stop may take to exit before it is killed
POLL_S = 1.0  # wait_until_unlocked: how often it looks at the lock (~1 ms of CPU a look)
FRESH_S = 10.0  # wait_until_unlocked: how often it renews its status file's mtime


class Files:
    """A helper's files in its project folder, named by its key (subclasses are dataclasses
    with these two fields): its status file (pid, how to reach it) and its ready marker."""

    folder: Path
    key: str

    @property
    def status(self) -> Path:
        return self.folder / f"{self.key}.json"

    @property
    def ready(self) -> Path:
        return self.folder / f"{self.key}.ready"


def enabled(env: str) -> bool:
    """Whether the helper that `env` configures is on (it is, unless set to off)."""
    return os.environ.get(env, "").strip().lower() not in OFF


def idle_seconds(env: str, default: int) -> int:
    """How long the helper lives without a request: `env` as whole seconds, else `default`."""
    setting = os.environ.get(env, "").strip()
    return int(setting) if setting.isdigit() else default


def identify(status: Path) -> tuple[int, dict[str, Any]]:
    """The helper's pid and status data, if that process is alive and is this helper (its
    command line names this status file). OSError or ValueError otherwise."""
    data = json.loads(status.read_text(encoding="utf-8"))
    pid = data.get("pid") if isinstance(data, dict) else None
    if not isinstance(pid, int) or isinstance(pid, bool):
        raise ValueError(f"{status}: no pid")
    if not names(pid, status):
        raise ValueError(f"process {pid} is not the helper of {status}")
    return pid, data


def names(pid: int, status: Path) -> bool:
    """Whether process `pid` runs and its command line names `status` (OSError when it died)."""
    command = Path(f"/proc/{pid}/cmdline").read_bytes()
    return alive(pid) and str(status).encode() in command.split(b"\0")


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def stop(pid: int, ask: Callable[[], bool]) -> None:
    """Ask the helper to stop (`ask` says whether it took the request) and wait until it has
    exited; kill it when it did not take it or did not exit within STOP_S (hung or busy).
    Waiting matters: a stopping helper deletes its status file as it exits, which, late, would
    delete the next one's (same key, same path). `pid` comes from `identify`: it is the helper."""
    if ask():
        deadline = time.monotonic() + STOP_S
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    if alive(pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def terminate(pid: int) -> bool:
    """`stop`'s request by signal: SIGTERM (True when it was sent)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return False
    return True


def spawn(command: list[str], cwd: Path) -> int:
    """Start a helper in the background and return its pid at once. It is in a session of its
    own, not in the build's process group: Ctrl-C stops the build, not the helper (which stops
    when idle); its output goes nowhere (a build's output is the build's). Its environment is
    os.environ, explicitly: not the C-level one, which imports such as readline add to (LINES,
    COLUMNS) and which a helper keyed by os.environ must not differ by."""
    process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module, our own paths
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=cwd,
        env=dict(os.environ),
    )
    return process.pid


def flock_held(path: Path) -> bool:
    """Whether some process holds (or waits for) an flock on `path`, from the kernel's table
    (/proc/locks: its device as hex major:minor and its inode). False when that cannot be told
    (no such file, no /proc): the caller then goes on as if it were free."""
    try:
        stat = os.stat(path)
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    wanted = (os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino)
    for line in table.splitlines():
        fields = line.split()  # "1: FLOCK  ADVISORY  WRITE 1906 fe:00:4728345 0 EOF"
        if "FLOCK" not in fields:
            continue
        where = fields[fields.index("FLOCK") + 4 :][:1]
        with contextlib.suppress(ValueError):
            major, minor, inode = where[0].split(":") if where else ("", "", "")
            if (int(major, 16), int(minor, 16), int(inode)) == wanted:
                return True
    return False


def wait_until_unlocked(path: Path, limit_s: float, keep_fresh: Path) -> bool:
    """Wait while an flock is held on `path` (flock_held), at most `limit_s` seconds (False
    then); `keep_fresh`'s mtime is renewed every FRESH_S meanwhile, so that a helper waiting
    here is not taken for one stuck warming up (its status file's age says how long it has
    been at it)."""
    deadline = time.monotonic() + limit_s
    fresh = time.monotonic()
    while flock_held(path):
        now = time.monotonic()
        if now >= deadline:
            return False
        if now - fresh >= FRESH_S:
            fresh = now
            with contextlib.suppress(OSError):
                os.utime(keep_fresh)
        time.sleep(POLL_S)
    return True


def private_folder(folder: Path) -> Path:
    """`folder`, made if missing, readable by our own user only (0700)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder
