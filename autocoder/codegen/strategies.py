"""Hypothesis strategies that generate valid messages of a resolved schema.

A strategy is first built as a small tree (`Strategy`), which renders to Python source for the
generated property tests and builds real hypothesis strategies for the benchmarks: one
description of "a valid message", two uses, and no eval anywhere.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autocoder.codegen.literals import pyliteral

if TYPE_CHECKING:
    from autocoder.ir.models import FieldSpecIR

MAX_ITEMS = 4


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
        bounded = "min_length" in spec or "max_length" in spec
        return Strategy(
            "from_regex", (spec["pattern"],), (("fullmatch", True),), (low, high) if bounded else None
        )
    return Strategy("text", (), (("min_size", low), ("max_size", high if high is not None else 20)))


def simplest_message(fields: Mapping[str, FieldSpecIR], cache: Path | None = None) -> dict[str, Any]:
    """The simplest valid message of a schema (hypothesis shrinks to it, so it is stable),
    cached on disk by the schema's content hash: finding it costs about half a second."""
    from autocoder.canonical import canonical_json, content_hash
    from autocoder.fsutil import write_if_changed

    path = cache / f"{content_hash(fields)}.json" if cache is not None else None
    if path is not None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    message = _simplest(json.dumps(fields, sort_keys=True))
    if path is not None:
        write_if_changed(path, canonical_json(message))
    return message


@functools.lru_cache(maxsize=256)
def _simplest(fields_json: str) -> dict[str, Any]:
    from hypothesis import Phase, find, settings

    strategy = message_strategy(json.loads(fields_json)).build()
    # generate and shrink only: the explain phase (on by default since hypothesis 6.x) re-runs
    # the shrunk example many times to say which parts matter, which `find` does not report
    # and which cost ~95% of the search (0.8 s of 0.85 s per schema); the result is the same
    phases = (Phase.generate, Phase.shrink)
    return find(strategy, lambda _: True, settings=settings(database=None, max_examples=200, phases=phases))
