"""Hypothesis strategies that generate valid messages of a resolved schema.

A strategy is first built as a small tree (`Strategy`), which renders to Python source for the
generated property tests and builds real hypothesis strategies for the benchmarks: one
description of "a valid message", two uses, and no eval anywhere.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autocoder.codegen.literals import pyliteral

if TYPE_CHECKING:
    from autocoder.ir.models import FieldSpecIR

MAX_ITEMS = 4

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sre_constants as _sre

_STARTS = (_sre.AT_BEGINNING, _sre.AT_BEGINNING_STRING)  # ^ \A: no-ops in a fullmatch
_ENDS = (_sre.AT_END, _sre.AT_END_STRING)  # $ \Z: as much, the match must reach the end


@dataclass(frozen=True)
class Strategy:
    """`st.<function>(*args, **kwargs)`; `length` adds a `.filter` on len() for strings."""

    function: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    length: tuple[int, int | None] | None = None

    def source(self) -> str:
        parts = [_source(a) for a in self.args] + [f"{k}={_source(v)}" for k, v in self.kwargs]
        text = f"st.{self.function}({', '.join(parts)})"
        if self.length is not None:
            low, high = self.length
            text += f".filter(lambda s: {low} <= len(s)" + (f" <= {high})" if high is not None else ")")
        return text

    def build(self) -> Any:
        from hypothesis import strategies as st

        args = [_build(a) for a in self.args]
        built = getattr(st, self.function)(*args, **{k: _build(v) for k, v in self.kwargs})
        if self.length is not None:
            low, high = self.length
            built = built.filter(lambda s: low <= len(s) and (high is None or len(s) <= high))
        return built


def _source(value: Any) -> str:
    if isinstance(value, Strategy):
        return value.source()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{pyliteral(k)}: {_source(v)}" for k, v in value.items()) + "}"
    return pyliteral(value)


def _build(value: Any) -> Any:
    if isinstance(value, Strategy):
        return value.build()
    if isinstance(value, dict):
        return {k: _build(v) for k, v in value.items()}
    return value


INT64 = (-(2**63), 2**63 - 1)
_INT64 = Strategy("integers", (), (("min_value", INT64[0]), ("max_value", INT64[1])))


def integer_bounds(spec: FieldSpecIR) -> tuple[int, int]:
    """An integer field's range: its own bounds, else those of a signed 64-bit int, which every
    store (SQLite, PostgreSQL BIGINT, JSON) holds exactly."""
    low = math.ceil(spec["minimum"]) if "minimum" in spec else INT64[0]
    high = math.floor(spec["maximum"]) if "maximum" in spec else INT64[1]
    return max(low, INT64[0]), min(high, INT64[1])


def message_strategy(fields: Mapping[str, FieldSpecIR]) -> Strategy:
    """Valid messages with these resolved fields (optional ones sometimes left out)."""
    required = {
        n: field_strategy(s)
        for n, s in sorted(fields.items())
        if s.get("required", True) and "default" not in s
    }
    optional = {n: field_strategy(s) for n, s in sorted(fields.items()) if n not in required}
    kwargs = (("optional", optional),) if optional else ()
    return Strategy("fixed_dictionaries", (required,), kwargs)


def field_strategy(spec: FieldSpecIR) -> Strategy:
    kind = spec["type"]
    if "enum" in spec:
        return Strategy("sampled_from", (list(spec["enum"]),))
    if kind == "string":
        return _string(spec)
    if kind == "integer":
        low, high = integer_bounds(spec)
        return Strategy("integers", (), (("min_value", low), ("max_value", high)))
    if kind == "number":
        return Strategy(
            "floats",
            (),
            (
                ("min_value", spec.get("minimum")),
                ("max_value", spec.get("maximum")),
                ("allow_nan", False),
                ("allow_infinity", False),
            ),
        )
    if kind == "boolean":
        return Strategy("booleans")
    if kind == "array":
        item = field_strategy(spec["items"]) if spec.get("items") else _INT64
        low = spec.get("min_length", 0)
        high = max(low, min(spec.get("max_length", MAX_ITEMS), MAX_ITEMS))
        return Strategy("lists", (item,), (("min_size", low), ("max_size", high)))
    if spec.get("fields") is not None:
        return message_strategy(spec["fields"])
    return Strategy("dictionaries", (Strategy("text", (), (("max_size", 8),)), _INT64), (("max_size", 3),))


def _string(spec: FieldSpecIR) -> Strategy:
    low = spec.get("min_length", 0)
    high = spec.get("max_length")
    if "pattern" in spec:
        simple = repeated_characters(spec["pattern"])
        if simple is not None:
            alphabet, least, most = simple
            least = max(least, low)  # the pattern's lengths and the field's, both hold
            most = high if most is None else most if high is None else min(most, high)
            if most is None or least <= most:
                return Strategy("text", (), (("alphabet", alphabet), ("min_size", least), ("max_size", most)))
        bounded = "min_length" in spec or "max_length" in spec
        return Strategy(
            "from_regex", (spec["pattern"],), (("fullmatch", True),), (low, high) if bounded else None
        )
    return Strategy("text", (), (("min_size", low), ("max_size", high if high is not None else 20)))


MAX_ALPHABET = 1024  # characters spelled out in a generated test; a wider class stays a regex


def repeated_characters(pattern: str) -> tuple[str, int, int | None] | None:
    """(alphabet, least, most) when the strings that fullmatch `pattern` are exactly those of
    least..most (None: no limit) characters from `alphabet`: an optionally anchored single
    character class or literal, optionally repeated (`^[a-z0-9-]{1,32}$`). Hypothesis draws
    such strings as `text(alphabet=...)` at a fraction of `from_regex`'s cost. Python's own
    regex parser reads the pattern, so escapes and ranges mean what they mean to `re`; any
    other shape (flags, negation, categories such as \\d, several items, surrogates, a class
    wider than MAX_ALPHABET) gives None and the pattern stays a `from_regex`."""
    parsed = _parse(pattern)
    if parsed is None or parsed.state.flags != re.UNICODE:
        return None
    items = list(parsed)
    if items and items[0][0] == _sre.AT and items[0][1] in _STARTS:
        items = items[1:]
    if items and items[-1][0] == _sre.AT and items[-1][1] in _ENDS:
        items = items[:-1]
    if len(items) != 1:
        return None
    op, argument = items[0]
    least: int = 1
    most: int | None = 1
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):  # greedy or lazy: the same strings
        least, high, body = argument
        most = None if high == _sre.MAXREPEAT else high
        if len(body) != 1:
            return None
        op, argument = body[0]
    alphabet = _characters(op, argument)
    if alphabet is None:
        return None
    return alphabet, least, most


def _parse(pattern: str) -> Any:
    """Python's parse of `pattern`, or None where it warns: a FutureWarning marks what a
    future `re` (and the runtime's Rust engine: `[[`, `--`, `&&`) may read as a set operation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # sre_parse: alias of re._parser
        warnings.simplefilter("error", FutureWarning)
        import sre_parse

        try:
            return sre_parse.parse(pattern)
        except (re.error, FutureWarning, RecursionError, OverflowError):
            return None


def _characters(op: Any, argument: Any) -> str | None:
    """The characters one LITERAL or IN item (of LITERAL and RANGE only) matches, sorted."""
    if op == _sre.LITERAL:
        pairs = [(argument, argument)]
    elif op == _sre.IN and all(o in (_sre.LITERAL, _sre.RANGE) for o, _ in argument):
        pairs = [(a, a) if o == _sre.LITERAL else a for o, a in argument]
    else:
        return None
    if sum(high - low + 1 for low, high in pairs) > MAX_ALPHABET:
        return None
    codes = sorted({code for low, high in pairs for code in range(low, high + 1)})
    if any(0xD800 <= code <= 0xDFFF for code in codes):  # not text hypothesis would draw
        return None
    return "".join(map(chr, codes))


def simplest_message(fields: Mapping[str, FieldSpecIR], cache: Path | None = None) -> dict[str, Any]:
    """The simplest valid message of a schema (hypothesis shrinks to it, so it is stable),
    cached on disk by the schema's content hash: finding it costs about half a second.

    `cache`: the project's folder of them (a build's); a schema it lacks is then looked up in
    the machine's copy (`machine_samples`) before it is searched for, and a search's result is
    kept in both: a new project on this machine (every benchmark, every scratch build) finds
    its ingress samples without importing hypothesis in gen:runtime, which every component
    test waits for."""
    from autocoder.canonical import canonical_json, content_hash
    from autocoder.fsutil import atomic_write, write_if_changed

    if cache is None:
        return _simplest(json.dumps(fields, sort_keys=True))
    name = f"{content_hash(fields)}.json"
    path = cache / name
    found = _read_sample(path)
    if found is not None:
        return found
    machine = machine_samples() / name
    message = _read_sample(machine)
    if message is None:
        message = _simplest(json.dumps(fields, sort_keys=True))
        with contextlib.suppress(OSError):  # best effort: the next project searches again
            atomic_write(machine, canonical_json(message), durable=False)
    write_if_changed(path, canonical_json(message))
    return message


def _read_sample(path: Path) -> dict[str, Any] | None:
    """A cached simplest message (None when missing or unreadable: derived data, found again)."""
    try:
        found = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


@functools.cache
def machine_samples() -> Path:
    """The machine's simplest messages, beside the run-cache's local store, in a folder keyed
    by everything that decides them besides the schema (its content hash names the file):
    this Python and its Unicode database (hypothesis's text alphabet), hypothesis's and
    ruff's versions, and the code of the generator (codegen/*.py: the strategies)."""
    import platform
    import unicodedata

    from autocoder.runcache.cache import machine_folder
    from autocoder.tools import tool_versions

    key = f"{platform.python_version()} {unicodedata.unidata_version} {tool_versions()}\n".encode()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        key += source.name.encode() + b"\0" + source.read_bytes()
    return machine_folder("samples", key)


@functools.lru_cache(maxsize=256)
def _simplest(fields_json: str) -> dict[str, Any]:
    from hypothesis import Phase, find, settings

    strategy = message_strategy(json.loads(fields_json)).build()
    # generate and shrink only: the explain phase (on by default since hypothesis 6.x) re-runs
    # the shrunk example many times to say which parts matter, which `find` does not report
    # and which cost ~95% of the search (0.8 s of 0.85 s per schema); the result is the same
    phases = (Phase.generate, Phase.shrink)
    return find(strategy, lambda _: True, settings=settings(database=None, max_examples=200, phases=phases))
