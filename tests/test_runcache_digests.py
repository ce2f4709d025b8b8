"""The run-cache key's file digests remembered by stat (autocoder/runcache/digests.py): a
remembered digest gives exactly the key that hashing every file gives, any change of a file
(content, size, inode, times) makes it hashed again, and a file changed too recently to be told
apart by its stat is never remembered."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autocoder.runcache import digests
from autocoder.runcache.digests import MIN_FILES, dependency_digests, file_sha256, memo_path
from autocoder.runcache.keys import task_key

OLD_NS = 1_600_000_000 * 10**9  # mtime of files "written long ago"


def make_files(project: Path, count: int = MIN_FILES + 3) -> list[str]:
    names = []
    for i in range(count):
        path = project / "reports" / f"r{i}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'{{"n": {i}}}')
        os.utime(path, ns=(OLD_NS, OLD_NS))
        names.append(f"reports/r{i}.json")
    return names


def hashed(project: Path, names: list[str]) -> dict[str, str]:
    return {name: file_sha256(project / name) for name in names}


def remembered(project: Path, task: str) -> dict[str, list]:
    return json.loads(memo_path(project, task).read_text())["files"]


@pytest.fixture
def settled(monkeypatch):
    """Files count as changed long enough ago (their ctime is now: a test cannot wait 2 s)."""
    monkeypatch.setattr(digests, "RACY_NS", 0)


def test_remembered_digests_give_the_key_that_hashing_gives(tmp_path, settled):
    names = make_files(tmp_path)
    first = task_key(tmp_path, "report", names, ["summary.json"])
    assert set(remembered(tmp_path, "report")) == set(names)
    memo = memo_path(tmp_path, "report").read_bytes()
    assert dependency_digests(tmp_path, "report", names) == hashed(tmp_path, names)
    assert task_key(tmp_path, "report", names, ["summary.json"]) == first
    assert memo_path(tmp_path, "report").read_bytes() == memo  # nothing new: not rewritten
    # the same key as a project whose files were never remembered
    other = tmp_path / "other"
    other.mkdir()
    assert task_key(other, "report", make_files(other), ["summary.json"]) == first


def test_a_changed_file_is_hashed_again_whatever_stays_the_same(tmp_path, settled):
    names = make_files(tmp_path)
    before = dependency_digests(tmp_path, "report", names)
    path = tmp_path / names[0]
    path.write_text('{"n": 9}')  # same size, in place (same inode), mtime set back
    os.utime(path, ns=(OLD_NS, OLD_NS))
    after = dependency_digests(tmp_path, "report", names)
    assert after[names[0]] != before[names[0]] and after == hashed(tmp_path, names)
    replaced = tmp_path / "new.json"  # a new inode with the old one's size and times
    replaced.write_text('{"n": 7}')
    os.utime(replaced, ns=(OLD_NS, OLD_NS))
    os.replace(replaced, tmp_path / names[1])
    assert dependency_digests(tmp_path, "report", names) == hashed(tmp_path, names)


def test_recently_changed_files_are_not_remembered_and_the_memo_follows_the_dependencies(tmp_path):
    names = make_files(tmp_path)
    assert dependency_digests(tmp_path, "report", names) == hashed(tmp_path, names)
    assert not memo_path(tmp_path, "report").exists()  # every ctime is now: nothing remembered
    digests.RACY_NS, racy = 0, digests.RACY_NS
    try:
        dependency_digests(tmp_path, "report", names)
        assert set(remembered(tmp_path, "report")) == set(names)
        dependency_digests(tmp_path, "report", names[1:])  # a dependency dropped leaves the memo
        assert set(remembered(tmp_path, "report")) == set(names[1:])
    finally:
        digests.RACY_NS = racy


def test_a_broken_memo_costs_hashing_never_a_wrong_digest(tmp_path, settled):
    names = make_files(tmp_path)
    dependency_digests(tmp_path, "report", names)
    memo = memo_path(tmp_path, "report")
    data = json.loads(memo.read_text())
    data["files"][names[0]][4] = "0" * 64  # a digest that does not belong to the file's stat...
    data["files"][names[0]][2] += 1  # ...under another stat: never used
    memo.write_text(json.dumps(data))
    assert dependency_digests(tmp_path, "report", names) == hashed(tmp_path, names)
    memo.write_text("not json")
    assert dependency_digests(tmp_path, "report", names) == hashed(tmp_path, names)
    assert dependency_digests(tmp_path, "policy", names) == hashed(tmp_path, names)  # its own memo
    with pytest.raises(OSError):
        dependency_digests(tmp_path, "report", [*names, "reports/missing.json"])
