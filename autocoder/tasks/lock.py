"""One build at a time in a project: an exclusive lock on generated/.lock.

Two builds in one project write the same files (one died reading a JUnit file the other was
writing). The build takes an flock before its first task and keeps it until its process ends;
the kernel releases it however the process ends, SIGKILL included, so a lock is never stale. A
second build waits, saying which process holds the lock.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from autocoder.layout import GENERATED

LOCK = f"{GENERATED}/.lock"
_held: dict[Path, int] = {}  # lock file -> descriptor, open until the process ends


def acquire(directory: Path) -> None:
    """Take the project's build lock, waiting (with one line on stderr naming the holder) while
    another build has it. Raises OSError when the lock cannot be created (read-only project)."""
    from autocoder.userpaths import shown

    path = (directory / LOCK).absolute()
    if path in _held:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 100, 0).decode(errors="replace").strip() or "another build"
            sys.stderr.write(
                f"autocoder: another build of this project is running ({holder}); waiting for it "
                f"to finish ({shown(LOCK)} is locked)\n"
            )
            sys.stderr.flush()
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    _held[path] = fd


def cannot_write(exc: OSError, what: str = "") -> str:
    """One line for a build that cannot write its project (read-only, full disk): the path as
    the user names it, the reason and the fix; no traceback."""
    from autocoder.userpaths import shown

    where = exc.filename or what
    if where:
        absolute = Path(os.path.abspath(where))
        try:
            where = shown(absolute.relative_to(Path.cwd()).as_posix())
        except ValueError:
            where = str(absolute)
    return (
        f"cannot write {where or 'the project'}: {exc.strerror or exc}; fix: make the project folder "
        f"writable (and free disk space), then build again"
    )


def preflight(directory: Path) -> None:
    """Take the lock and make sure doit's database can be opened for writing, before doit
    starts (it would die with an sqlite traceback). Raises OSError naming the path."""
    acquire(directory)
    os.close(os.open(directory / ".doit.db", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
