"""Running generated code from the build process: import path, environment and scratch space, scoped."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def importable(src: Path) -> None:
    """Make the generated package importable (once; the path stays for the whole build)."""
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# A RAM-backed file system for the throwaway databases of tests and benchmarks, when this
# machine has one with room: creating, syncing and deleting SQLite files there costs about
# 3 ms instead of 40 ms on a busy disk, with the same SQLite code path (WAL, the same PRAGMAs;
# fsync returns at once). AUTOCODER_SCRATCH_DIR names another directory.
RAM_DIRECTORIES = ("/dev/shm",)  # noqa: S108 - a private mkdtemp directory is made inside
RAM_FREE_BYTES = 512 * 1024 * 1024


def scratch_root() -> str | None:
    """Where scratch directories go: $AUTOCODER_SCRATCH_DIR, else a RAM file system with
    room that we may write, else None (the system temp directory)."""
    chosen = os.environ.get("AUTOCODER_SCRATCH_DIR")
    if chosen:
        return chosen
    for candidate in RAM_DIRECTORIES:
        try:
            stats = os.statvfs(candidate)
        except OSError:
            continue
        if os.access(candidate, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= RAM_FREE_BYTES:
            return candidate
    return None


@contextlib.contextmanager
def scratch_directory(prefix: str) -> Iterator[Path]:
    """A fresh private directory for one run's throwaway files, deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir=scratch_root()) as path:
        yield Path(path)
