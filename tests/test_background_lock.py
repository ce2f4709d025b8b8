"""validate/background.py's view of a build lock: whether an flock is held on a file, read from
the kernel's table, and a bounded wait for it that keeps the waiter's status file fresh."""

from __future__ import annotations

import fcntl
import os
import time

from autocoder.validate import background


def test_flock_held_follows_a_real_lock(tmp_path):
    path = tmp_path / ".lock"
    assert not background.flock_held(path)  # no such file: free
    path.write_text("")
    assert not background.flock_held(path)
    other = tmp_path / "other"
    other.write_text("")
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert background.flock_held(path)
        assert not background.flock_held(other)
    finally:
        os.close(fd)
    assert not background.flock_held(path)


def test_the_wait_is_bounded_and_keeps_the_status_file_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(background, "FRESH_S", 0.1)
    monkeypatch.setattr(background, "POLL_S", 0.02)
    path, status = tmp_path / ".lock", tmp_path / "status.json"
    path.write_text("")
    status.write_text("{}")
    os.utime(status, (1, 1))
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        start = time.monotonic()
        assert not background.wait_until_unlocked(path, 0.5, status)
        assert 0.5 <= time.monotonic() - start < 5
        assert status.stat().st_mtime > 1
    finally:
        os.close(fd)
    assert background.wait_until_unlocked(path, 0.5, status)
