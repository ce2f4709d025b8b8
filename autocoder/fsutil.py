"""Atomic, change-only file writes: the basis of deterministic, incremental builds.

A write goes to a temporary file in the same directory, is flushed to disk and renamed over
the target, so a reader (or a build killed half-way) sees the old bytes or the new ones, never
a torn file. A file whose bytes would not change is not touched at all, which keeps its mtime
and lets doit's md5 check cut the rebuild off early.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically write `data` to `path` unless it already holds exactly these bytes.

    Returns True when the file was (re)written.
    """
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data)
    return True


def atomic_write(path: Path, data: bytes) -> None:
    """Write via temp file + fsync + rename; the temp file never survives a failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
