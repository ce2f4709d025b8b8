"""Hypothesis strategies (as Python source) that generate valid messages of a resolved schema."""

from __future__ import annotations

import math
from typing import Any

from autocoder.codegen.literals import pyliteral

MAX_ITEMS = 4


def message_strategy(fields: dict[str, Any]) -> str:
    """`st.fixed_dictionaries(...)` source for a message with these resolved fields."""
    required = {n: s for n, s in sorted(fields.items()) if s.get("required", True) and "default" not in s}
    optional = {n: s for n, s in sorted(fields.items()) if n not in required}
    parts = ["{" + ", ".join(f"{pyliteral(n)}: {field_strategy(s)}" for n, s in required.items()) + "}"]
    if optional:
        parts.append(
            "optional={"
            + ", ".join(f"{pyliteral(n)}: {field_strategy(s)}" for n, s in optional.items())
            + "}"
        )
    return f"st.fixed_dictionaries({', '.join(parts)})"


def field_strategy(spec: dict[str, Any]) -> str:
    kind = spec["type"]
    if "enum" in spec:
        return f"st.sampled_from({pyliteral(spec['enum'])})"
    if kind == "string":
        return _string(spec)
    if kind == "integer":
        low = math.ceil(spec["minimum"]) if "minimum" in spec else None
        high = math.floor(spec["maximum"]) if "maximum" in spec else None
        return f"st.integers(min_value={low!r}, max_value={high!r})"
    if kind == "number":
        low, high = spec.get("minimum"), spec.get("maximum")
        return (
            f"st.floats(min_value={pyliteral(low)}, max_value={pyliteral(high)}, "
            "allow_nan=False, allow_infinity=False)"
        )
    if kind == "boolean":
        return "st.booleans()"
    if kind == "array":
        item = field_strategy(spec["items"]) if spec.get("items") else "st.integers()"
        low = spec.get("min_length", 0)
        high = max(low, min(spec.get("max_length", MAX_ITEMS), MAX_ITEMS))
        return f"st.lists({item}, min_size={low}, max_size={high})"
    if spec.get("fields") is not None:
        return message_strategy(spec["fields"])
    return "st.dictionaries(st.text(max_size=8), st.integers(), max_size=3)"


def _string(spec: dict[str, Any]) -> str:
    low = spec.get("min_length", 0)
    high = spec.get("max_length")
    if "pattern" in spec:
        base = f"st.from_regex({pyliteral(spec['pattern'])}, fullmatch=True)"
        if "min_length" in spec or "max_length" in spec:
            bound = f"{low} <= len(s)" + (f" <= {high}" if high is not None else "")
            base += f".filter(lambda s: {bound})"
        return base
    return f"st.text(min_size={low}, max_size={high if high is not None else 20})"
