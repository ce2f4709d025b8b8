"""The report's incremental merge (autocoder/validate/merge.py): its output is canonical_json's,
byte for byte, and its cache re-reads exactly the files that changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autocoder.canonical import canonical_json
from autocoder.fsutil import atomic_write
from autocoder.validate.merge import Encoded, FileCache, encode_bytes, encoded, tier_result

VALUES = [
    {},
    [],
    "",
    0,
    -3,
    1.5,
    1e-05,
    1e16,
    0.1,
    True,
    None,
    {"b": [1, {"z": [], "a": {}}], "a": 'line\nbreak "quoted" \\ tab\t é ✓ \u2028'},
    [[[]], [{}], [[1, 2], {"k": None}]],
    {"components": {"x": {"lint": {"findings": [{"line": 3, "ok": False}]}}}, "ok": True},
]


@pytest.mark.parametrize("value", VALUES)
def test_encode_is_canonical_json(value):
    assert encode_bytes(value) == canonical_json(value)


def _with_encoded_parts(value, depth: int):
    """The same value with every part at `depth` replaced by its Encoded text."""
    if depth == 0:
        return Encoded(encoded(value))
    if isinstance(value, dict):
        return {k: _with_encoded_parts(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_encoded_parts(v, depth - 1) for v in value]
    return value


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("value", VALUES[-3:])
def test_encoded_parts_are_reindented_exactly(value, depth):
    assert encode_bytes(_with_encoded_parts(value, depth)) == canonical_json(value)


def test_encode_refuses_what_canonical_json_refuses():
    with pytest.raises(ValueError):
        encode_bytes({"p95": float("nan")})


def _result(path: Path, ok: bool, note: str = "") -> None:
    atomic_write(path, canonical_json({"ok": ok, "note": note}))


def test_cache_rereads_only_changed_files(tmp_path):
    files = [tmp_path / f"{n}.json" for n in ("a", "b", "c")]
    for f in files:
        _result(f, True)
    read: list[bytes] = []

    def derive(raw: bytes):
        read.append(raw)
        return tier_result(raw)

    cache_file = tmp_path / "cache.json"
    first = FileCache(cache_file)
    assert [first.get(str(f), derive) for f in files] == [(True, encoded({"ok": True, "note": ""}))] * 3
    first.save()
    assert len(read) == 3

    _result(files[1], False, "broken")  # rewritten by an atomic rename, as every result file is
    second = FileCache(cache_file)
    found = [second.get(str(f), derive) for f in files]
    assert len(read) == 4 and json.loads(read[-1])["note"] == "broken"
    assert [tuple(x) for x in found] == [
        (True, encoded({"ok": True, "note": ""})),
        (False, encoded({"ok": False, "note": "broken"})),
        (True, encoded({"ok": True, "note": ""})),
    ]
    assert second.get(str(tmp_path / "missing.json"), derive) is None
    second.save()

    os.remove(files[2])  # a removed component's file drops out of the cache
    third = FileCache(cache_file)
    assert third.get(str(files[0]), derive)[0] is True and third.get(str(files[2]), derive) is None
    third.save()
    assert [k for k in json.loads(cache_file.read_text())["entries"]] == [str(files[0])]
    assert len(read) == 4


def test_unreadable_result_and_corrupt_cache_are_ignored(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    cache_file = tmp_path / "cache.json"
    cache_file.write_text('{"format": 1, "entries": [1, 2')  # truncated by a killed writer
    cache = FileCache(cache_file)
    assert cache.entries == {}
    assert cache.get(str(bad), tier_result) is None
    bad.write_text('{"ok": "yes"}')  # not a result file
    assert cache.get(str(bad), tier_result) is None


def test_a_changed_salt_is_a_miss(tmp_path):
    """The policy task caches a runtime file's findings under the policy they were found with."""
    path = tmp_path / "app.py"
    path.write_text("import os\n")
    calls: list[str] = []
    cache = FileCache(tmp_path / "cache.json")
    for salt in ("policy-a", "policy-a", "policy-b"):
        cache.get(str(path), lambda raw, salt=salt: calls.append(salt) or [], salt=salt)
    assert calls == ["policy-a", "policy-b"]


def test_cache_appends_changed_entries_and_skips_a_torn_append(tmp_path):
    """A one-file change appends one journal line (the base is not rewritten); a torn last line
    is skipped; what a journaled cache returns equals what a fresh, uncached read returns."""
    files = [tmp_path / f"{n}.json" for n in range(40)]
    for f in files:
        _result(f, True)
    cache_file = tmp_path / "cache.json"
    first = FileCache(cache_file)
    for f in files:
        first.get(str(f), tier_result)
    first.save()
    base = cache_file.read_bytes()
    assert b"\n" not in base

    _result(files[3], False, "broken")
    second = FileCache(cache_file)
    assert [second.get(str(f), tier_result) for f in files].count(None) == 0
    second.save()
    text = cache_file.read_bytes()
    assert text.startswith(base) and text.count(b"\n") == 1  # one appended entry

    with open(cache_file, "ab") as handle:  # a writer killed in the middle of its append
        handle.write(b'\n["' + str(files[5]).encode() + b'",[1,2')
    third = FileCache(cache_file)
    read: list[bytes] = []

    def derive(raw: bytes):
        read.append(raw)
        return tier_result(raw)

    cached = [third.get(str(f), derive) for f in files]
    assert read == []  # every entry, the journaled one too, was a hit
    assert [tuple(x) for x in cached] == [tier_result(f.read_bytes()) for f in files]
    assert cached[3][0] is False


def test_cache_compacts_a_long_journal(tmp_path):
    files = [tmp_path / f"{n}.json" for n in range(4)]
    for f in files:
        _result(f, True)
    cache_file = tmp_path / "cache.json"
    for round_ in range(30):
        _result(files[round_ % 4], round_ % 2 == 0, f"round {round_}")
        cache = FileCache(cache_file)
        for f in files:
            cache.get(str(f), tier_result)
        cache.save()
        assert cache_file.read_bytes().count(b"\n") <= 5  # (lines * 4 > entries + 16) compacts
    fresh = FileCache(cache_file)
    assert [tuple(fresh.get(str(f), tier_result)) for f in files] == [
        tier_result(f.read_bytes()) for f in files
    ]
