"""The type tier's mypy daemon (dmypy, fine-grained incremental): a one-component edit re-checks
that component in about 0.1 s instead of mypy's ~1 s fixed cost per run (finding 1,300 modules,
reading their cache entries, loading the trees the edited module depends on).

Life cycle, per project (its status file lives under generated/.cache/dmypy/):
- A typecheck that ran in process on a project that already had a cache (a rebuild: someone is
  editing) starts a daemon in the background, from its own copy of the cache just written
  (mypy's fine-grained cache, so it loads in ~3 s instead of re-checking ~15 s). The build does
  not wait for it. It is ready once it has answered its first check (a `.ready` marker).
- A later typecheck asks the ready daemon to check the package and its tests; the daemon stats
  every source file and re-checks what changed, as mypy's own incremental mode does.
- It stops by itself after AUTOCODER_MYPY_DAEMON seconds without a request (default 900);
  `off` never starts one (tests turn it off by default: every test build would leave one).

It is keyed by everything that could make its answer differ from an in-process run: mypy's,
Python's and the runtime's versions, the environment, the generated pyproject.toml, the flags
and the paths. A daemon of another key is stopped. A build never waits on a daemon that is not
ready, never hangs on one (every request has a timeout) and never trusts an answer that is not
a clean mypy result (an error, a crash, a status other than 0/1, or status 1 without a parsable
error line): the daemon is then stopped and the in-process run answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autocoder.fsutil import atomic_write
from autocoder.validate import background

ENV = "AUTOCODER_MYPY_DAEMON"
IDLE_S = 900  # the daemon stops itself after this many seconds without a request
WAIT_S = 60.0  # the longest a build waits for a ready daemon's answer before running in process
WARMUP_S = 600  # a daemon not ready this long after it started is taken for stuck


@dataclass(frozen=True)
class Daemon(background.Files):
    """One project's daemon for one key: where its files are, how it is started and asked."""

    src: Path
    folder: Path
    key: str
    flags: tuple[str, ...]  # the in-process run's mypy flags (its --cache-dir included)
    paths: tuple[str, ...]
    idle_s: int
    wait_s: float

    @property
    def cache(self) -> Path:
        return self.folder / f"{self.key}-cache"

    def daemon_flags(self) -> list[str]:
        """The in-process flags with the daemon's own cache copy, loaded as a fine-grained cache."""
        flags = list(self.flags)
        flags[flags.index("--cache-dir") + 1] = str(self.cache)
        return [*flags, "--use-fine-grained-cache"]

    def check(self) -> tuple[str, int] | None:
        """mypy's output and exit status for `paths` from this project's ready daemon; None when
        there is no ready daemon or its answer is not a clean mypy result (it is then stopped)."""
        if not self.ready.is_file():
            return None
        try:
            pid, connection = _status(self.status)
        except (OSError, ValueError):
            self._forget()
            return None
        response = _request(connection, self.wait_s, command="check", files=list(self.paths))
        out, status = response.get("out"), response.get("status")
        if "error" in response or status not in (0, 1) or not isinstance(out, str):
            self.stop(pid, connection)
            return None
        return out, status

    def start(self) -> None:
        """Start this key's daemon in the background (stopping other keys' daemons first) from a
        copy of the in-process cache; returns at once. Failing to start costs only speed. A
        daemon of this key that is still warming up is left to finish (its cache copy is in
        use), unless it has been at it for WARMUP_S: then it is taken for stuck and replaced."""
        self.stop_others()
        with contextlib.suppress(OSError, ValueError):
            pid, connection = _status(self.status)
            if self.ready.is_file() or time.time() - self.status.stat().st_mtime < WARMUP_S:
                return
            self.stop(pid, connection)
        source = Path(self.flags[self.flags.index("--cache-dir") + 1])
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.cache, ignore_errors=True)
            shutil.copytree(source, self.cache)
            background.spawn(
                [sys.executable, "-m", __name__, str(self.status), str(self.ready), str(self.idle_s)]
                + ["--", *self.daemon_flags(), *self.paths],
                cwd=self.src,  # `paths` are relative to it, as in the in-process run
            )
        except OSError:
            self._forget()

    def stop(self, pid: int | None = None, connection: str | None = None) -> None:
        """Stop this key's daemon (asked, then killed) and forget it."""
        if pid is None or connection is None:
            try:
                pid, connection = _status(self.status)
            except (OSError, ValueError):
                self._forget()
                return
        _stop(pid, connection)
        self._forget()

    def stop_others(self) -> None:
        """Stop the daemons of other keys in this project (another mypy, runtime or config) and
        remove what they left (a daemon that stopped itself leaves its marker and cache copy)."""
        names = [p.name for p in self.folder.iterdir()] if self.folder.is_dir() else []
        keys = {name.split(".")[0].removesuffix("-cache") for name in names}
        for key in sorted(keys - {self.key}):
            Daemon(self.src, self.folder, key, self.flags, self.paths, 0, 0.0).stop()

    def _forget(self) -> None:
        for path in (self.ready, self.status):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.cache, ignore_errors=True)


def daemon_for(src: Path, cache: Path, flags: list[str], paths: list[str]) -> Daemon | None:
    """The daemon of this project, configuration and environment (None: AUTOCODER_MYPY_DAEMON=off)."""
    from autocoder.runtime_pkg import runtime_fingerprint

    if not enabled():
        return None
    idle_s = background.idle_seconds(ENV, IDLE_S)
    key = hashlib.sha256(
        json.dumps(
            [
                importlib.metadata.version("mypy"),
                sys.version,
                sys.prefix,
                runtime_fingerprint(),
                (src / "pyproject.toml").read_text(encoding="utf-8"),
                flags,
                paths,
            ]
        ).encode()
    ).hexdigest()[:16]
    return Daemon(src, cache.parent / "dmypy", key, tuple(flags), tuple(paths), idle_s, WAIT_S)


def enabled() -> bool:
    """Whether daemons are on (AUTOCODER_MYPY_DAEMON is not off): only then does the cache keep
    mypy's fine-grained dependencies (up to a quarter more CPU on a cold check)."""
    return background.enabled(ENV)


def _status(status: Path) -> tuple[int, str]:
    """The daemon's pid and socket from its status file, if that process is alive and is this
    daemon (background.identify)."""
    pid, data = background.identify(status)
    connection = data.get("connection_name")
    if not isinstance(connection, str):
        raise ValueError(f"{status}: not a dmypy status file")
    return pid, connection


def _request(connection: str, timeout: float, **args: Any) -> dict[str, Any]:
    """One request, its final response (or {"error": ...}): never a tty's colours, so its output
    parses as the in-process run's; every read bounded by `timeout`."""
    from mypy.dmypy_util import receive, send
    from mypy.ipc import IPCClient, IPCException

    response: dict[str, Any] = {}
    try:
        with IPCClient(connection, timeout) as client:
            send(client, {**args, "is_tty": False, "terminal_width": 80, "export_types": False})
            while not response.pop("final", False):
                response = receive(client)
    except (OSError, IPCException) as error:
        return {"error": str(error) or type(error).__name__}
    return response


def _stop(pid: int, connection: str) -> None:
    """Ask the daemon to stop and wait until it has exited (background.stop)."""
    background.stop(pid, lambda: "error" not in _request(connection, 2.0, command="stop"))


def _warm(status: str, ready: str, idle_s: str, mypy_args: list[str]) -> int:
    """Start the daemon and have it answer a first check (it loads the cache), then mark it ready.
    Runs in a process of its own, started by `Daemon.start`."""
    from mypy.dmypy.client import main

    try:
        main(["--status-file", status, "run", "--timeout", idle_s, "--", *mypy_args])
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 2
    if code in (0, 1):
        atomic_write(Path(ready), b"ready\n", durable=False)
    return code


if __name__ == "__main__":
    status, ready, idle_s, separator, *mypy_args = sys.argv[1:]
    sys.exit(_warm(status, ready, idle_s, mypy_args))
