"""The `report` task's merge of per-component result files, incremental (and the file cache the
`policy` task also uses for the runtime's files).

At 500 components the report reads about 2,000 small files and writes two large ones; parsing
every file and running json's pure-Python indenting encoder over everything cost more than the
edit it reported on. Here each input file is read, parsed and encoded once: what the report
needs of it (its verdict, its canonical text) is kept in a cache under generated/.cache keyed by
the file's stat, so a one-component edit re-reads only that component's files, and the outputs
are assembled from the cached texts. They are byte-identical to `canonical_json` of the same
data (tests/test_report_merge.py compares them).
"""

from __future__ import annotations

import json
import json.encoder
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from autocoder.canonical import canonical_json
from autocoder.fsutil import write_if_changed

T = TypeVar("T")
_string: Callable[[str], str] = json.encoder.encode_basestring  # json's own (C) string encoder
CACHE_FORMAT = 1


class Encoded:
    """A value already in canonical_json's form (indented at depth 0, no final newline)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def encoded(value: Any) -> str:
    return canonical_json(value).decode().removesuffix("\n")


def encode(value: Any, depth: int = 0) -> str:
    """canonical_json's text of `value`, in which Encoded parts are taken as they are.

    json's indent puts `depth` more levels after every newline of a nested value; strings never
    hold a raw newline (json escapes it), so re-indenting a fragment is a replace."""
    if isinstance(value, str):
        return _string(value)
    if value is None or isinstance(value, bool | int) or isinstance(value, float) and math.isfinite(value):
        return (
            "null"
            if value is None
            else "true"
            if value is True
            else "false"
            if value is False
            else repr(value)
        )
    if isinstance(value, Encoded):
        return value.text.replace("\n", "\n" + "  " * depth) if depth else value.text
    inner = "\n" + "  " * (depth + 1)
    if isinstance(value, dict) and value:
        items = (f"{_string(key)}: {encode(value[key], depth + 1)}" for key in sorted(value))
        return "{" + inner + ("," + inner).join(items) + "\n" + "  " * depth + "}"
    if isinstance(value, list) and value:
        return (
            "[" + inner + ("," + inner).join(encode(v, depth + 1) for v in value) + "\n" + "  " * depth + "]"
        )
    return encoded(value).replace("\n", "\n" + "  " * depth) if depth else encoded(value)


def encode_bytes(value: Any) -> bytes:
    """`canonical_json(value)`, for values holding Encoded parts."""
    return (encode(value) + "\n").encode()


class FileCache:
    """file -> (its stat, what was derived from its bytes), kept across builds in one file.

    The cache file is a base line, compact JSON {"format", "entries"} (plain data, parsed by
    json's C decoder in a few milliseconds), followed by journal lines, each one changed entry
    [key, stamp, value]. A one-component edit at 500 components appends its few changed entries
    instead of rewriting the whole 2 MB file (on a busy disk, renaming a rewritten 2 MB file over
    the old one cost 0.1-0.2 s of the report task). A later line overrides an earlier one; a line
    that does not parse (a killed writer's torn append) is skipped; a base that is missing,
    truncated or of another format makes the whole cache empty (rebuilt). The file is compacted
    (rewritten atomically with the entries of this run only) when an entry is dropped or the
    journal grows past a quarter of the entries.
    A file's entry is trusted while its mtime, ctime, size and inode are unchanged: every result
    file is replaced by an atomic rename (a new inode), never rewritten in place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, tuple[tuple[int, ...], Any]] = {}
        self.used: set[str] = set()
        self.changed: dict[str, tuple[tuple[int, ...], Any]] = {}
        self.dropped = False
        self.journal = 0
        self.based = False  # whether the file has a base line to append to
        try:
            base, *journal = path.read_bytes().split(b"\n")
            data = json.loads(base)
            if isinstance(data, dict) and data.get("format") == CACHE_FORMAT:
                self.entries = dict(data["entries"])
                self.based = True
        except (OSError, ValueError, TypeError, KeyError):
            self.entries = {}
            return
        for line in journal:
            try:
                key, stamp, value = json.loads(line)
            except (ValueError, TypeError):
                continue  # an empty line, or an append torn by a killed writer
            if isinstance(key, str) and isinstance(stamp, list):
                self.entries[key] = (tuple(stamp), value)
                self.journal += 1

    def get(self, file: str, derive: Callable[[bytes], T], *, salt: str = "") -> T | None:
        """derive(file's bytes), from the cache when the file is unchanged; None if it is absent
        or derive raises ValueError (an unreadable result file counts as no result). `file` is a
        str: at 2,000 files a call, pathlib's joins cost more than the stat. `salt` names what
        else `derive` depends on (a changed salt is a miss)."""
        key = f"{salt}\0{file}" if salt else file
        try:
            st = os.stat(file)
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
        hit = self.entries.get(key)
        self.used.add(key)
        if hit is not None and tuple(hit[0]) == stamp:
            return hit[1]  # type: ignore[no-any-return]
        try:
            with open(file, "rb") as handle:
                value = derive(handle.read())
        except (OSError, ValueError):
            self.dropped |= self.entries.pop(key, None) is not None
            self.changed.pop(key, None)
            return None
        self.entries[key] = self.changed[key] = (stamp, value)
        return value

    def save(self) -> None:
        """Append this run's changed entries; or compact: keep only the entries of the files read
        this time (removed components drop out)."""
        compact = (
            not self.based
            or self.dropped
            or self.used != self.entries.keys()
            or (self.journal + len(self.changed)) * 4 > len(self.entries) + 16
        )
        if compact:
            entries = {k: v for k, v in self.entries.items() if k in self.used}
            data = json.dumps(
                {"format": CACHE_FORMAT, "entries": entries}, separators=(",", ":"), ensure_ascii=False
            )
            write_if_changed(self.path, data.encode(), durable=False)
        elif self.changed:
            lines = "".join(
                "\n" + json.dumps([key, stamp, value], separators=(",", ":"), ensure_ascii=False)
                for key, (stamp, value) in self.changed.items()
            )
            with open(self.path, "ab") as handle:  # no fsync: a lost append costs a re-read
                handle.write(lines.encode())
        self.journal = 0 if compact else self.journal + len(self.changed)
        self.changed, self.dropped, self.based = {}, False, True


def tier_result(raw: bytes) -> tuple[bool, str]:
    """A tier's result file as (ok, its canonical text)."""
    data = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
        raise ValueError("not a result file")
    return data["ok"], encoded(data)


def sarif_runs(raw: bytes) -> list[tuple[dict[str, Any], list[str]]]:
    """A SARIF log's runs, each as (the run without its results, each result's canonical text)."""
    log = json.loads(raw)
    return [
        ({k: v for k, v in run.items() if k != "results"}, [encoded(r) for r in run["results"]])
        for run in log["runs"]
    ]


def sarif_log(runs: list[tuple[dict[str, Any], list[str]]]) -> dict[str, Any]:
    """The log back from sarif_runs, its results as Encoded parts (what sarif.merge takes)."""
    from autocoder.validate.sarif import SCHEMA

    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{**run, "results": [Encoded(r) for r in results]} for run, results in runs],
    }
